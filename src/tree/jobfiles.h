/* jobfiles.h — the hooks of the tree's job files (DESIGN.md, "Jobs"): a
 * pod's `run` (a script in, the newest job's output out) and `exit` (the
 * newest job's status, waited for; in jobs/<job>/, that job's), and each
 * job's `cmd` (its script; written, it starts a waiting job), `out` (its
 * output: a regular file that grows), `follow` (its output from its start
 * as a stream that ends with it) and `signal` (written: sent; read: the
 * last one sent). A crawl (intent_crawler: cp -r, grep -r, tar, rsync,
 * find -exec...) reads `run`, `exit` and `follow` as they are now and
 * never waits; any other reader waits as DESIGN.md says. FUSE-free: tree.c
 * declares them in its file tables and the FUSE layer calls them through struct
 * file_hooks. */
#ifndef PRIMEFS_JOBFILES_H
#define PRIMEFS_JOBFILES_H

#include "tree.h"

extern const struct file_hooks run_hooks;
extern const struct file_hooks exit_hooks;
extern const struct file_hooks cmd_hooks;
extern const struct file_hooks cmd_ro_hooks; /* history: read-only */
extern const struct file_hooks out_hooks;
extern const struct file_hooks signal_hooks;
extern const struct file_hooks follow_hooks;

/* Whether the close by `closer` is the last of the handle's open: no other
 * process still holds it for writing (holders.h), and the closer is not
 * exiting. A script file (run, cmd, nodes/all/run) starts its job there,
 * else at the RELEASE (see jobfiles.c's header). */
bool jobfile_last_close(struct tree_handle *h, pid_t closer);

#endif
