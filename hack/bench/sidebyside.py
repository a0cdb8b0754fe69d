"""Side-by-side setup of hack/bench/pods and hack/bench/exec (see hack/bench/lib.sh): a
docker-registry on a loopback port with hack/images/build's images and a pause image holding
berth's own pause binary, berthd, and a private Debian containerd (CRI plugin, runc,
restrict_oom_score_adj = true), each on its own CNI bridge, each daemon in its own cpuacct
cgroup; and the cleanup that removes all of it.

    import sidebyside as sb
    try:
        sb.start_all()          # sets sb.image, sb.pause_image
        ... sb.drive(sb.berth_sock, "berthd", ...) ...
    finally:
        sb.cleanup()

The repository and the script's name come from BENCH_REPO and BENCH_NAME (set by lib.sh).
"""
import gzip, hashlib, io, json, os, signal, socket, subprocess, sys, tarfile, tempfile, time

repo = os.environ["BENCH_REPO"]
name = os.environ.get("BENCH_NAME", "bench")
berthd_bin = f"{repo}/target/release/berthd"
driver = f"{repo}/target/release/examples/cri_bench"
CNI_BIN = "/usr/lib/cni"
# Short path: berth-shim sockets live below berthd's state dir.
work = tempfile.mkdtemp(prefix=f"bb{name[0]}.", dir="/tmp")
logs = os.path.join(work, "logs")
procs = {}    # name -> Popen
bridges = []
# Each daemon runs in its own cpuacct cgroup, with everything it starts that stays out of the
# containers' cgroups: shims, the OCI runtime, CNI plugins. Its CPU time per lifecycle does
# not depend on what else the machine runs, unlike the wall times.
CPUACCT = f"/sys/fs/cgroup/cpuacct/{os.path.basename(work)}"


def sigterm(*_):
    raise SystemExit(143)


signal.signal(signal.SIGTERM, sigterm)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, ok, seconds=30):
    deadline = time.time() + seconds
    while not ok():
        for proc, p in procs.items():
            if p.poll() is not None:
                tail = open(os.path.join(work, f"{proc}.log"), errors="replace").readlines()[-20:]
                sys.exit(f"hack/bench/{name}: {proc} exited ({p.returncode}); its log ends:\n{''.join(tail)}")
        if time.time() > deadline:
            sys.exit(f"hack/bench/{name}: {what} did not come up")
        time.sleep(0.05)


def answers(addr):
    try:
        with socket.create_connection(addr, timeout=1) as s:
            s.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1")
    except OSError:
        return False


def connects(path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            return True
    except OSError:
        return False


def start(name, argv, cpu_cgroup=False):
    log = open(os.path.join(work, f"{name}.log"), "w")
    join = None
    if cpu_cgroup and os.path.isdir(os.path.dirname(CPUACCT)):
        os.makedirs(f"{CPUACCT}/{name}")

        def join():
            with open(f"{CPUACCT}/{name}/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
    procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   preexec_fn=join)


def cpu_ms(name):
    """CPU time of the daemon's cgroup so far; NaN without a cgroup v1 cpuacct hierarchy."""
    try:
        with open(f"{CPUACCT}/{name}/cpuacct.usage") as f:
            return int(f.read()) / 1e6
    except OSError:
        return float("nan")


def drive(socket_path, label, *args, check=True):
    """Runs cri_bench; returns its stdout lines."""
    argv = [driver, "--socket", socket_path, "--label", label, "--log-dir", logs, *args]
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    if check and out.returncode != 0:
        sys.exit(f"hack/bench/{name}: cri_bench {label} {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout.splitlines()


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def pause_layout(binary, layout):
    """An OCI layout with one image, tag `pause`: /pause (berth's infra binary) as entrypoint,
    user 65535 as in registry.k8s.io/pause."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = open(binary, "rb").read()
        info = tarfile.TarInfo("pause")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = put_blob(layout, gzip.compress(raw.getvalue(), mtime=0))
    config = put_blob(layout, json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode())
    manifest = put_blob(layout, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }).encode())
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": "pause"}}]},
        open(os.path.join(layout, "index.json"), "w"))


def push(src, dest):
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                    src, f"docker://{dest}"], check=True, stdin=subprocess.DEVNULL)


def cni_conf(dir_, bridge, octet, with_loopback):
    os.makedirs(dir_)
    plugins = [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": os.path.join(dir_, "ipam"),
                  "ranges": [[{"subnet": f"10.201.{octet}.0/24", "gateway": f"10.201.{octet}.1"}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]
    if with_loopback:
        plugins.append({"type": "loopback"})
    json.dump({"cniVersion": "1.0.0", "name": f"bench-{bridge}", "plugins": plugins},
              open(os.path.join(dir_, "10-bench.conflist"), "w"))
    bridges.append(bridge)


def vmrss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def processes(exe_name, needle):
    """Pids of processes named exe_name whose command line mentions needle."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).decode(errors="replace") == exe_name and \
                needle.encode() in b" ".join(argv):
            out.append(int(pid))
    return out


def bench_cgroups():
    found = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(root) == "berth-bench":
            found.append(root)
            dirs.clear()
        elif root.count("/") > 6:
            dirs.clear()
    return found


berth_sock = os.path.join(work, "b", "s", "berth.sock")
ctrd_sock = os.path.join(work, "c", "containerd.sock")
image = pause_image = None  # set by start_all


def cleanup():
    for label, sock in (("berthd", berth_sock), ("containerd", ctrd_sock)):
        p = procs.get(label)
        if p is not None and p.poll() is None:
            try:
                drive(sock, label, "--down", check=False)
            except Exception as e:  # noqa: BLE001 - best effort at exit
                print(f"cleanup: {label} pods: {e}", file=sys.stderr)
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    # Whatever outlived a failed teardown: shims, then the containers' processes.
    for pid in processes("berth-shim", work) + processes("containerd-shim-runc-v2", work):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for cg in bench_cgroups():
        for root, _, files in os.walk(cg):
            if "cgroup.procs" in files:
                for pid in open(os.path.join(root, "cgroup.procs")).read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
    time.sleep(0.5)
    mounts = [l.split()[4] for l in open("/proc/self/mountinfo")]
    for m in reversed(mounts):
        if m.startswith(work + "/"):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
    for b in bridges:
        subprocess.run(["ip", "link", "del", b], stderr=subprocess.DEVNULL)
    for cg in bench_cgroups():
        for root, _, _ in sorted(os.walk(cg), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(root)
            except OSError:
                pass
    for d in (f"{CPUACCT}/berthd", f"{CPUACCT}/containerd", CPUACCT):
        try:
            os.rmdir(d)
        except OSError:
            pass
    subprocess.run(["rm", "-rf", "--one-file-system", work])



def start_all():
    """Registry and images, berthd, containerd; sets `image` (busybox) and `pause_image`."""
    global image, pause_image
    # Registry and images.
    reg = f"127.0.0.1:{free_port()}"
    open(os.path.join(work, "registry.yml"), "w").write(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
        f"http:\n  addr: {reg}\n")
    start("registry", ["/usr/bin/docker-registry", "serve", os.path.join(work, "registry.yml")])
    host, port = reg.split(":")
    wait_for("docker-registry", lambda: answers((host, int(port))))
    subprocess.run([f"{repo}/hack/images/build", f"{work}/layout"], check=True, stdout=subprocess.DEVNULL)
    image = f"{reg}/bench/busybox:1"
    push(f"oci:{work}/layout:busybox", image)

    # berthd: installs its pause binary under its root at start.
    cni_conf(f"{work}/cni-b", "bbench0", 1, with_loopback=True)
    os.makedirs(f"{work}/b")
    open(f"{work}/b/config.toml", "w").write(
        f'[cni]\nconf_dir = "{work}/cni-b"\nbin_dirs = ["{CNI_BIN}"]\n'
        f'[registry]\nplain_http = ["{reg}"]\nconfig_path = "{work}/b/certs.d"\n')
    start("berthd", [berthd_bin, "--config", f"{work}/b/config.toml", "--root", f"{work}/b/root",
                     "--state", f"{work}/b/s", "--socket", berth_sock, "--log-level", "warn"], cpu_cgroup=True)
    wait_for("berthd", lambda: connects(berth_sock))

    # The same infra binary as containerd's sandbox image.
    pause_layout(f"{work}/b/root/pause/rootfs/pause", f"{work}/pause-layout")
    pause_image = f"{reg}/bench/pause:1"
    push(f"oci:{work}/pause-layout:pause", pause_image)

    # containerd with the CRI plugin, everything private to this run.
    cni_conf(f"{work}/cni-c", "cbench0", 2, with_loopback=False)
    c = f"{work}/c"
    os.makedirs(f"{c}/certs.d/{reg}")
    open(f"{c}/certs.d/{reg}/hosts.toml", "w").write(
        f'server = "http://{reg}"\n[host."http://{reg}"]\n  capabilities = ["pull", "resolve"]\n')
    open(f"{c}/config.toml", "w").write(f"""version = 2
root = "{c}/root"
state = "{c}/state"
oom_score = 0
[grpc]
  address = "{ctrd_sock}"
[ttrpc]
  address = "{ctrd_sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # root here lacks CAP_SYS_RESOURCE: without this every pod start fails (docs: MACHINE.md)
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{c}/state/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{work}/cni-c"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{c}/certs.d"
""")
    start("containerd", ["containerd", "--config", f"{c}/config.toml", "--log-level", "warn"], cpu_cgroup=True)
    wait_for("containerd", lambda: connects(ctrd_sock))

