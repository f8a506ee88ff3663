#!/bin/sh
# The harness initramfs's /init (harness.vm.boot_initramfs builds the image): mount the
# guest's root (the host's, or harness.vm.guestroot's minimal one) over 9p with the command
# line's rootflags, load the disks' drivers beside it, warm the agent up, switch root.
set -f  # the command line's words are split below, never globbed
mount -t proc proc /proc
mknod /dev/kmsg c 1 11
mknod /dev/null c 1 3  # a background job's stdin: without it the job dies at once
log() { echo "<6>harness initramfs: $*" > /dev/kmsg; }
read -r cmdline < /proc/cmdline
init=""; drivers=""; flags="version=9p2000.L,trans=virtio,access=any,msize=524288"
for word in $cmdline; do
  case "$word" in
    init=*) init="${word#init=}" ;;
    rootflags=*) flags="${word#rootflags=}" ;;
  esac
done
# $1: module file, $2: its name; its parameters come from the kernel command line (NAME.P=V),
# which busybox insmod does not read from /proc/cmdline itself.
load() {
  args=""
  for word in $cmdline; do
    case "$word" in "$2".*) args="$args ${word#"$2".}" ;; esac
  done
  log "loading $2$args"
  insmod "$1" $args || log "insmod $2 failed"
}
. /modules/load.sh
log "mounting the guest's root (9p: $flags)"
if ! mount -n -t 9p -o "ro,$flags" /dev/root /newroot; then
  log "could not mount the guest's root over 9p: we are stuck"
  exit 1
fi
warm() {  # its exit status reaches the log through fd 3: the switch deletes /dev/kmsg
  old=$IFS; IFS=,; set -- $1; IFS=$old
  log "warming up: $*"
  (
    exec 3> /dev/kmsg
    chroot /newroot "$@" < /dev/null > /dev/null 2>&1 3>&- &
    echo $! > /warm.pid
    wait $!
    echo "<6>harness initramfs: warm-up exited $?" >&3
  ) &
  # no switch before its chroot: until then it finds the host's root at /newroot only
  while [ ! -s /warm.pid ]; do :; done
  read -r pid < /warm.pid
  while [ -e "/proc/$pid/root/modules/load.sh" ]; do :; done
}
for word in $cmdline; do
  case "$word" in harness.warm=*) warm "${word#harness.warm=}" ;; esac
done
[ -z "$drivers" ] || wait "$drivers"  # the switch empties the initramfs they load from
umount /proc
[ -n "$init" ] || { log "no init= on the kernel command line"; exit 1; }
log "done; switching to the guest's root"
exec switch_root /newroot "$init" "$@"
