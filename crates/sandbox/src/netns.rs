//! Pod network namespaces, pinned by a bind mount under berth's state dir.
