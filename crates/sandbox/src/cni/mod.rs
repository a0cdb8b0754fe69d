//! The runtime side of the CNI spec: network configs, plugin invocation, result cache.
