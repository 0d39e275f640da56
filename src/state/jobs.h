/* jobs.h — every job run on a pod through this mount (DESIGN.md, "Jobs"):
 * numbered ones from `run`, named ones from `mkdir jobs/<name>`, with their
 * script, output, state, times and exit status. They are kept on local
 * disk under the state directory, <dir>/<pod_id>/<job>/ holding `cmd`,
 * `out` and `meta`, so they outlive their pod and the mount; the oldest
 * outputs are dropped first to stay under a cap (`out` emptied: meta's
 * `dropped` and a log line say so). A running job's output is written to
 * its `out` file by the SSH layer as it arrives, so memory stays bounded
 * whatever a job prints. FUSE-free: the tree's job files
 * and unit tests use it alike.
 *
 * Threads: every call may come from any thread. No lock is held across
 * network I/O (jobs_start waits for the pod and sends the script without
 * one) or while logging. */
#ifndef PRIMEFS_JOBS_H
#define PRIMEFS_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "util.h"

struct runs;
struct jobs;
struct job; /* refcounted: job_put what a call returned referenced */

struct jobs_opts {
	const char *dir; /* <state>/jobs, for messages */
	int dir_fd;	 /* > 0: dir, open (statedir.h; the store keeps a
			    dup); else dir is opened by its path (made
			    if missing). Nothing in it is followed if a
			    link. */
	unsigned long long keep_bytes; /* cap on all jobs' outputs together */
	struct runs *runs;	       /* starts scripts (NULL: unit tests of
					  ended jobs only) */
};

enum job_state { JOB_WAITING, JOB_RUNNING, JOB_EXITED, JOB_LOST };

/* Loads what earlier mounts left in dir: their jobs keep their records;
 * one that was running when its mount ended is now `lost`. NULL only if
 * dir cannot be created or read (logged). */
struct jobs *jobs_new(const struct jobs_opts *o);
/* Running jobs end as lost for readers; records stay on disk. */
void jobs_free(struct jobs *j);

/* Calls add(ctx, name) for every job of the pod with this id (whether the
 * pod still exists or not): numbered jobs by number (1, 2, ..., 10), then
 * named ones by name. */
int jobs_list(struct jobs *j, const char *pod_id,
	      int (*add)(void *ctx, const char *name), void *ctx);
/* The job named `name` ("1", "2", ... or a mkdir'ed name) of the pod,
 * referenced, or NULL. */
struct job *jobs_get(struct jobs *j, const char *pod_id, const char *name);
/* The job started last on the pod (numbered or named), referenced, or
 * NULL before any: what `run`, `exit` and `jobs/latest` show. */
struct job *jobs_latest(struct jobs *j, const char *pod_id);
/* The pods (ids) that have jobs on record, for history/<pod>/jobs. */
bool jobs_pod_has(struct jobs *j, const char *pod_id);

/* A new numbered job runs script (len bytes) on the pod (jobs_claim_new,
 * then jobs_start: a read-write `run` read after writing); returns once
 * it has started: 0 and the job referenced (now the latest),
 * or -errno as runs_start (E2BIG over RUNS_MAX_SCRIPT: nothing sent, no
 * job recorded; ENOTCONN, EHOSTUNREACH, EACCES, EINTR, ENOENT), or the
 * errno of a record that cannot be kept (ENOSPC: logged, nothing sent). */
int jobs_run(struct jobs *j, const char *pod_id, const char *script, size_t len,
	     bool (*interrupted)(void *arg), void *arg, struct job **out);
/* `run` written, then closed by one of the processes that hold it (a
 * FLUSH): a new numbered job, waiting for the rest of its script, that is
 * the pod's latest from now on (`run` and `exit` follow it, its exit
 * waits). 0 and the job referenced, or -ENOENT (a bad pod id) or the
 * errno of a record that cannot be made (logged). */
int jobs_claim_new(struct jobs *j, const char *pod_id, struct job **out);
/* A named job's `cmd` written and closed by one holder: as jobs_claim_new
 * for a waiting job (0, or -EBUSY once it has started). */
int jobs_claim(struct jobs *j, struct job *jb);
/* A claimed job whose script will never be sent (its start failed, it was
 * too big): it ends now as `lost`, for whoever waits on it. */
void jobs_abandon(struct jobs *j, struct job *jb);
/* Waiting, with its script coming (claimed or being started). */
bool job_pending(struct job *jb);
/* `mkdir jobs/<name>`: a waiting job (0, -EEXIST, -EINVAL for a bad or
 * numeric name or "latest", -ENOENT for a pod id that cannot be a
 * directory's name: whether the pod exists is the caller's to check; the
 * errno if its record cannot be made, such as -ENOSPC, logged). */
int jobs_create(struct jobs *j, const char *pod_id, const char *name);
/* Starts a waiting (or claimed) job as jobs_run does (-EBUSY if it has
 * started already, or is being started). On failure a claimed job stays
 * waiting: the caller abandons it. */
int jobs_start(struct jobs *j, struct job *jb, const char *script, size_t len,
	       bool (*interrupted)(void *arg), void *arg);
/* `rmdir jobs/<name>`: kills the job if it runs (as job_signal KILL),
 * forgets it and deletes its record: 0 or -ENOENT. Whoever still holds it
 * sees it end (lost), a waiting one too. */
int jobs_remove(struct jobs *j, const char *pod_id, const char *name);
/* The pod was removed: its running jobs end as `lost` at once (readers
 * and waiters get EOF within a second); their records stay, for history.
 */
void jobs_pod_gone(struct jobs *j, const char *pod_id);
/* A pods listing came (cache_set_pods_hook): the pods that exist are those
 * listed(arg, pod_id) says; the others are gone (jobs_pod_gone), and their
 * SSH sessions and known_hosts lines go too (ssh_pool_prune). listed is
 * called with locks held: a lookup only. */
void jobs_prune(struct jobs *j, bool (*listed)(void *arg, const char *pod_id),
		void *arg);
/* Whether a job of the pod is running now, or one ended after `since`
 * (the idle guard: a job that ran between two looks counts). */
bool jobs_busy(struct jobs *j, const char *pod_id, time_t since);

/* fn(arg, pod_id) is called when a job of the pod starts or ends in this
 * store (the idle guard; one store at a time has a hook: the mount's), on
 * the thread that saw it, with a lock of jobs.c's held that nothing else
 * takes: fn takes only its own short locks and calls nothing of jobs.
 * fn NULL unhooks; once this returns, the previous fn is not running. */
void jobs_set_activity_hook(struct jobs *j,
			    void (*fn)(void *arg, const char *pod_id),
			    void *arg);

struct job *job_get(struct job *jb);
void job_put(struct job *jb);
const char *job_name(const struct job *jb);
enum job_state job_state(struct job *jb);
/* "waiting\n", "running\n", "exited\n", "lost\n". */
const char *job_state_text(enum job_state s);
/* The script as sent (empty while waiting). */
void job_cmd(struct job *jb, struct buf *out);
/* Seconds since the epoch, or 0 while not yet started / ended. */
time_t job_started(struct job *jb);
time_t job_ended(struct job *jb);

/* Bytes of output so far: `out`'s true size. */
unsigned long long job_size(struct job *jb);
/* Non-blocking: up to n bytes of output at off; 0 with *eof once the job
 * has ended and off is at the end. */
ssize_t job_read(struct job *jb, unsigned long long off, char *buf, size_t n,
		 bool *eof);
/* Waits up to timeout seconds for output past off or the end: true when
 * either is there. */
bool job_wait(struct job *jb, unsigned long long off, double timeout);
/* After the end: "0\n".."255\n", "signal NAME\n" or "lost\n"; before it:
 * nothing is added and false returned. */
bool job_exit_text(struct job *jb, struct buf *out);
/* Waits up to timeout for the end; true when ended. */
bool job_wait_done(struct job *jb, double timeout);
/* fn(arg) is called (no lock of ours held) on new output or the end; for
 * FUSE poll. Returns an id; after job_unwatch returns, fn is not running
 * and is not called again. */
int job_watch(struct job *jb, void (*fn)(void *arg), void *arg);
void job_unwatch(struct job *jb, int id);
/* Sends a signal (a name as kill -l gives it, with or without SIG, or its
 * number) to the job's whole process group on the pod: 0, -EINVAL (unknown
 * name or number), -ESRCH (not running), -EINTR (interrupted(arg), may be
 * NULL, said so while it waited: ssh_cmd_signal), or an SSH errno. */
int job_signal(struct jobs *j, struct job *jb, const char *sig,
	       bool (*interrupted)(void *arg), void *arg);
/* The last signal sent by this mount (`TERM`, `KILL`, `9`...), or
 * nothing. */
void job_last_signal(struct job *jb, struct buf *out);

#endif
