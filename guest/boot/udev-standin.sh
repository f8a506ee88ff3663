#!/bin/sh
# The guest's udevd and udevadm for harness boots (bind-mounted over them in the mount
# namespace QEMU's 9p server runs in, so only the guest sees it). udev's coldplug was most
# of a TCG boot; the agent loads the drivers its plan needs itself. virtme-ng-init still
# wants /dev/virtio-ports/<name> for the script's I/O, which udev's rule would have made:
# make exactly those links, and answer every other udevadm call with success.
[ "$1" = "--daemon" ] || exit 0
mkdir -p /dev/virtio-ports
for port in /sys/class/virtio-ports/*; do
    # builtins only where possible: every fork+exec over 9p costs a lot under TCG
    read -r name < "$port/name" 2>/dev/null || continue
    [ -n "$name" ] && ln -sf "../${port##*/}" "/dev/virtio-ports/$name"
done
exit 0
