/* deadmount.h — a mount point left dead by a primefs that was killed
 * (kill -9, a crash: every access is ENOTCONN until someone unmounts it) is
 * unmounted at the next start, so that a restart (systemd's Restart=, a
 * user running primefs again) needs no fusermount3 -u first (DESIGN.md,
 * "Always on"). */
#ifndef PRIMEFS_DEADMOUNT_H
#define PRIMEFS_DEADMOUNT_H

/* When path is a dead FUSE mount of primefs (ENOTCONN, fuse.primefs in
 * /proc/self/mountinfo), detaches it: umount2(MNT_DETACH) as root, else
 * fusermount3 -u -z. Anything else is left alone. Says what it did on
 * stderr. 1 when one was unmounted, 0 when there was none, or -errno. */
int deadmount_clear(const char *path);

#endif
