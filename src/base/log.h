/* log.h — the sources of the `log` and `stats` files. `log` keeps the most
 * recent lines (time, operation, path, what the API or SSH said); `stats`
 * counts API calls per endpoint, retries, 429s and cache hits. Both are
 * safe from any thread and never block on I/O. */
#ifndef PRIMEFS_LOG_H
#define PRIMEFS_LOG_H

#include "util.h"

enum stat_counter {
	ST_RETRIES,
	ST_RATE_LIMITED,
	ST_API_ERRORS,
	ST_CACHE_HITS,
	ST_CACHE_MISSES,
	ST_STALE_SERVED,
	ST_SSH_SESSIONS, /* sessions set up (connect, host key, auth) */
	ST_SSH_COMMANDS, /* commands started */
	ST_SSH_LOST,	 /* sessions that died under us */
	ST_GUARDS_FIRED, /* pods a guard set out to terminate */
	/* FUSE requests that reached primefs, per operation: the kernel's
	 * caches answer the rest. */
	ST_FUSE_LOOKUP,
	ST_FUSE_GETATTR,
	ST_FUSE_READDIR, /* READDIR and READDIRPLUS */
	ST_FUSE_OPENDIR,
	ST_FUSE_RELEASEDIR,
	ST_FUSE_OPEN,
	ST_FUSE_READ,
	ST_FUSE_FLUSH,
	ST_FUSE_RELEASE,
	ST_FUSE_FORGET,	 /* inodes forgotten (FORGET, BATCH_FORGET) */
	ST_FUSE_INODES,	 /* not a count of events: inodes held now */
	ST_KERNEL_INVAL, /* kernel cache entries invalidated */
	/* Lookups under a pod's fs and home (sftp_lookup): answered from
	 * attributes kept, or after waiting for the pod; and stats sent
	 * ahead of a walker. */
	ST_PODFS_KEPT,
	ST_PODFS_WAITED,
	ST_PODFS_AHEAD,
	ST_COUNTERS
};

/* echo_stderr: every line goes to stderr too, written by a thread of its
 * own from a bounded queue (a full one drops lines, and says how many). */
void log_init(size_t max_lines, bool echo_stderr);
/* Waits at most 2 s for the queue to reach stderr. */
void log_shutdown(void);
/* Keeps the log in DIR/log as well, so that it reads the same after a
 * remount (DESIGN.md, "Guards"): the file's newest lines go before this
 * run's in the ring, and from then on plog appends each line to it, with
 * no lock held. Bounded: past 2 x max_lines lines it is rewritten with the
 * ring's (the oldest dropped). Opened without following a symlink, created
 * 0600; a log that is not a regular file is not kept. 0 or -errno. */
int log_keep(const char *dir);
/* One line: "<UTC time> <op> <path>: <message>". */
void plog(const char *op, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_render(struct buf *out);

void stats_count(enum stat_counter c);
/* A counter moved by delta (a gauge such as ST_FUSE_INODES). */
void stats_add(enum stat_counter c, long delta);
/* One API request sent to `endpoint` (a stable name such as "GET /pods"). */
void stats_api_call(const char *endpoint);
void stats_render(struct buf *out);
/* Lines another module adds to `stats` (the API's call budget), rendered
 * after the counters with no stats lock held. Set once, at start-up. */
void stats_set_source(void (*render)(void *arg, struct buf *out), void *arg);

#endif
