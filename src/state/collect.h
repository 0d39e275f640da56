/* collect.h — results kept when a pod goes (DESIGN.md, "Collect"): what
 * a pod's `collect` file names (paths relative to the pod's home, globs
 * allowed) is copied over SFTP into the state directory before primefs
 * terminates the pod, by rmdir or by a guard, and shown read-only at
 * history/<pod>/files/ in this and later mounts.
 *
 * Kept in the state directory (statedir.h rules):
 *   collect/<key>          a pod's list, one entry a line; keyed as guards
 *                          are (a placeholder's name until it settles, then
 *                          the pod's id: collect_rekey); none when empty
 *   files/<pod id>/<rel>   what was brought back, by its path under home
 *   files/.tmp/            files being brought back: renamed into place
 *                          only when whole, so no partial file is kept
 *
 * collect_run is the one network part: it holds no lock while it talks to
 * the pod, waits at most collect_timeout in all, brings back at most
 * collect_max bytes, and gives up at once on a pod it cannot reach. */
#ifndef PRIMEFS_COLLECT_H
#define PRIMEFS_COLLECT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct cache;
struct ssh_pool;
struct strlist; /* model.h */
struct sftp;

struct collect_opts {
	int dir_fd;		/* the state directory, open and checked */
	struct cache *cache;	/* the pods' ssh connections */
	struct ssh_pool *pool;	/* SFTP over the pod's own session */
	double timeout;		/* seconds collecting may take, per pod */
	unsigned long long max; /* bytes brought back at most, per pod */
	/* The pod's SFTP client where another module keeps one per pod (the
	 * pool takes one per pod at a time, sftp.h): lent by sftp_get (NULL:
	 * none, collect makes its own for the run) and given back by
	 * sftp_put. Both NULL: collect always makes its own. */
	struct sftp *(*sftp_get)(void *arg, const char *id, const char *conn);
	void (*sftp_put)(void *arg, struct sftp *f);
	void *sftp_arg;
};

struct collect;

struct collect *collect_new(const struct collect_opts *o);
void collect_free(struct collect *c);

/* Parses a collect list (one entry a line, or comma-separated; blanks
 * dropped) into entries "a/b" (a trailing '/' kept off). 0, or -EINVAL
 * with the reason in why: an absolute path, a ".." component. */
int collect_parse(const char *text, size_t len, struct strlist *out,
		  struct buf *why);

/* A write to a pod's `collect` file (its key, its name for `log`): 0,
 * -EINVAL (logged), or the errno of a change that cannot be kept. */
int collect_set(struct collect *c, const char *key, const char *name,
		const char *text, size_t len);
/* The template's `collect` at mkdir (NULL or empty: none). */
void collect_arm(struct collect *c, const char *key, const char *text);
/* The file's content: one entry a line ("\n" alone when empty). */
void collect_render(struct collect *c, const char *key, struct buf *out);
/* A placeholder's list becomes the pod's with id `to` (pending.h). */
void collect_rekey(struct collect *c, const char *from, const char *to);
/* The pod is gone: its list goes (what was brought back stays). */
void collect_forget(struct collect *c, const char *key);

/* Before the pod with this id (shown as name) is terminated: brings back
 * what its list names. Returns when done, when the time limit passed, or
 * at once when the pod cannot be reached; every entry not brought back is
 * named in `log`. A pod brought back once in this mount is not again
 * (a termination retried), unless its list was written since. */
void collect_run(struct collect *c, const char *id, const char *name);
/* The mount is ending: a run under way ends at its next wait (what it did
 * not bring back named in `log`), and none starts. */
void collect_stop(struct collect *c);

/* What was brought back: rel ("" for the pod's files/ itself) under
 * files/<id>/, opened with openat_nofollow (flags as it takes them). fd or
 * -errno. */
int collect_open(struct collect *c, const char *id, const char *rel, int flags);

#endif
