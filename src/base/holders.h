/* holders.h — whether any process still holds a descriptor on a file of
 * the mount, as /proc tells (the only place the kernel does). A FUSE FLUSH
 * says that one descriptor was closed, never whether it was the last of
 * its open: jobfiles.c asks this at a close, to start a job then, when no
 * other process can still write to it, instead of at the RELEASE whose
 * answer reaches no close(2). */
#ifndef PRIMEFS_HOLDERS_H
#define PRIMEFS_HOLDERS_H

#include <stdbool.h>
#include <sys/types.h>

/* 0 when no process but this one has a descriptor open for writing whose
 * link (/proc/PID/fd/N) lies under mnt (absolute, as this process sees it) and
 * ends in "/" base; 1 when one has; -1 when that cannot be known (mnt
 * NULL, a process whose descriptors may not be read). Conservative: any
 * open of a file of that name under the mount counts. Exact but for pid
 * reuse while it reads (a holder that forks and closes meanwhile is seen
 * unless its child's pid wrapped below its own), for processes outside
 * this pid namespace and for those whose descriptors this one may not
 * read (another user's when not root, a more privileged one): a script's
 * own processes, the ones that share its opens, are all seen. */
int fd_holders(const char *mnt, const char *base);

/* Whether thread pid is exiting (its descriptors are being closed by its
 * end, not by a close(2) that could be told an errno): the kernel
 * interrupts its requests, since its fatal signal is pending. */
bool proc_exiting(pid_t pid);

#endif
