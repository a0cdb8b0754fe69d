#!/bin/bash
# hack/vm/run-in-vm.sh CMD [ARG...]
#
# Runs CMD as root in a throw-away QEMU VM whose kernel has ONLY cgroup v2 (cgroup_no_v1=all,
# cgroup2 on /sys/fs/cgroup), and exits with CMD's status. Prepare the machine once with
# hack/vm/setup. CMD's stdout and stderr are printed when it ends.
#
# The guest sees the host's / read-only (9p) under a tmpfs overlay, the current directory
# read-write (so cargo's target/ is shared), and fresh tmpfs on /tmp and /run.
#
# Knobs: BERTH_VM_CACHE (default /var/cache/berth-vm, where hack/vm/setup put the kernel),
#        VM_CPUS (default 2), VM_MEM (default 1G), VM_TIMEOUT seconds (default 900),
#        VM_DEBUG=1 prints the guest console.
# Exit status: CMD's; 124 on timeout; 125 when the VM failed before CMD reported a status.
set -euo pipefail
[ "$#" -ge 1 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
fail() { echo "run-in-vm: $*" >&2; exit 125; }

CACHE=${BERTH_VM_CACHE:-/var/cache/berth-vm}
KERNEL=$(ls -1 "$CACHE"/kernel/boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
[ -n "$KERNEL" ] || fail "no kernel in $CACHE/kernel: run hack/vm/setup first"
KVER=${KERNEL##*/vmlinuz-}
MODDIR=$CACHE/kernel/lib/modules/$KVER
[ -s "$MODDIR/modules.dep" ] || fail "$MODDIR/modules.dep missing: run hack/vm/setup"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing: run hack/vm/setup"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 || fail "a static busybox is needed: run hack/vm/setup"

# ---- initramfs: busybox, the modules for virtio 9p and overlayfs, and /init (below) ----
HERE=$(cd "$(dirname "$0")" && pwd)
KEY=$(cat "$0" "$BUSYBOX" | cksum | cut -d' ' -f1)
INITRD=$CACHE/initramfs-$KVER-$KEY.cpio
if [ ! -s "$INITRD" ]; then
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
  mkdir -p "$W"/{bin,dev,proc,sys,mods,lower,upper,root}
  cp "$BUSYBOX" "$W/bin/busybox"
  : > "$W/mods/list"
  want() {   # $1: a module path as modules.dep spells it; its dependencies go first
    local dep
    grep -qxF "$1" "$W/mods/list" && return 0
    for dep in $(sed -n "s|^$1: *||p" "$MODDIR/modules.dep"); do want "$dep"; done
    cp "$MODDIR/$1" "$W/mods/"; echo "$1" >> "$W/mods/list"
  }
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    p=$(grep -oE "^[^:]*/$m\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | head -1 | tr -d :) || true
    [ -z "$p" ] || want "$p"    # absent from modules.dep: built into the kernel
  done
  sed -n '/^### INIT$/,$p' "$0" | tail -n +2 > "$W/init"; chmod +x "$W/init"
  (cd "$W" && find . | sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$W"; trap - EXIT
fi

# ---- the command, its environment and working directory, through a shared control dir ----
CTL=$(mktemp -d)
trap 'rm -rf "$CTL"' EXIT
{
  export -p | grep -vE '^declare -[a-zA-Z]* (BASH[A-Z_]*|SHELLOPTS|SHLVL|PWD|OLDPWD|_|TMPDIR)(=|$)' || true
  printf 'cd %q || exit 125\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$CTL/cmd"
printf '%s\n' "$PWD" > "$CTL/cwd"
printf '%s\n' "$MODDIR" "$KVER" > "$CTL/moddir"
: > "$CTL/out"; : > "$CTL/err"

if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then ACCEL=(-accel kvm -cpu host); else ACCEL=(-accel tcg,thread=multi -cpu max); fi
set +e
timeout --foreground -k 5 "${VM_TIMEOUT:-900}" qemu-system-x86_64 \
  -nodefaults -no-user-config -display none -no-reboot -machine q35 "${ACCEL[@]}" \
  -smp "${VM_CPUS:-2}" -m "${VM_MEM:-1G}" -kernel "$KERNEL" -initrd "$INITRD" \
  -append "console=ttyS0 loglevel=3 panic=-1 rdinit=/init cgroup_no_v1=all mitigations=off" \
  -serial "file:$CTL/console" \
  -fsdev local,id=r,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=r,mount_tag=hostroot \
  -fsdev local,id=c,path="$CTL",security_model=none -device virtio-9p-pci,fsdev=c,mount_tag=ctl \
  -fsdev local,id=w,path="$PWD",security_model=none,multidevs=remap -device virtio-9p-pci,fsdev=w,mount_tag=cwd \
  </dev/null
QRC=$?
set -e
cat "$CTL/out"; cat "$CTL/err" >&2
[ "${VM_DEBUG:-0}" = 1 ] && { echo "----- guest console -----" >&2; cat "$CTL/console" >&2; }
if [ -s "$CTL/rc" ]; then exit "$(cat "$CTL/rc")"; fi
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then echo "run-in-vm: timed out" >&2; exit 124; fi
echo "run-in-vm: the VM stopped (qemu status $QRC) before CMD reported a status; console:" >&2
tail -n 40 "$CTL/console" >&2
exit 125

### INIT
#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc; $B mount -t sysfs sysfs /sys; $B mount -t devtmpfs dev /dev
for m in $($B cat /mods/list); do $B insmod /mods/${m##*/} || echo "init: insmod $m failed"; done
die() { echo "init: $*"; $B poweroff -f; }
O=trans=virtio,version=9p2000.L,msize=512000
$B mount -t 9p -o ro,$O,cache=loose hostroot /lower || die "9p root"
$B mount -t tmpfs tmpfs /upper; $B mkdir -p /upper/u /upper/w
$B mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /root || die "overlay"
N=/root
$B mount -t tmpfs -o mode=755 tmpfs $N/run; $B mkdir -p $N/run/ctl
$B mount -t 9p -o $O ctl $N/run/ctl || die "ctl"
C=$N/run/ctl
CWD=$($B cat $C/cwd); $B mkdir -p "$N$CWD"
$B mount -t 9p -o $O,cache=mmap cwd "$N$CWD" || die "cwd"
MD=$($B head -1 $C/moddir); KV=$($B tail -1 $C/moddir)
$B mkdir -p $N/lib/modules/$KV; $B mount --bind /lower$MD $N/lib/modules/$KV
$B mount -t tmpfs -o mode=1777 tmpfs $N/tmp
$B mount --move /proc $N/proc; $B mount --move /sys $N/sys; $B mount --move /dev $N/dev
$B mkdir -p $N/dev/pts $N/dev/shm
$B mount -t devpts devpts $N/dev/pts; $B mount -t tmpfs tmpfs $N/dev/shm
$B mount -t cgroup2 -o nsdelegate cgroup2 $N/sys/fs/cgroup || die "cgroup2"
$B mount -t bpf bpf $N/sys/fs/bpf 2>/dev/null
$B cp $B $N/run/busybox
$B cat > $N/run/stage2 <<'STAGE2'
#!/run/busybox sh
C=/run/ctl
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
/run/busybox ip link set lo up 2>/dev/null
SH=/bin/sh; [ -x /bin/bash ] && SH=/bin/bash
$SH $C/cmd </dev/null >$C/out 2>$C/err
echo $? > $C/rc
/run/busybox sync
/run/busybox poweroff -f
STAGE2
$B chmod +x $N/run/stage2
exec $B switch_root $N /run/stage2
