/* jobfiles.c — see jobfiles.h. A run or exit handle follows one job (jobs.h):
 * a reader the pod's latest as of its open (or, in jobs/<job>/, that job),
 * a writer the one its own writes started. The other job files (cmd, out,
 * signal) hold their job from open to release.
 *
 * What FLUSH and RELEASE mean for a job (`run`, a job's `cmd`). One open
 * is shared by every process that inherits it (`{ a; b; } > run`, `exec
 * 3>run`, a background child, Python's subprocess with stdout=f), and the
 * kernel sends a FLUSH at every close of a descriptor of it, by whichever
 * process closes (`{ cat a; cat b; } > f` gives three, the first before
 * any write: bash's dup2), and one RELEASE when the last reference goes.
 * A FLUSH never says whether it is the last; the RELEASE comes after the
 * last FLUSH's answer, and its own answer reaches no close(2). So:
 * - everything written through the open is one script;
 * - at a FLUSH after a write, primefs asks /proc whether any other process
 *   still holds a descriptor of it for writing (holders.h). None, and the
 *   closer is not exiting: this close is the last; the job starts now and
 *   the close returns once it has started, or fails with the errno.
 *   Otherwise the job is claimed: numbered (or, for cmd, its named job),
 *   the pod's latest, state `waiting`, so that `cat exit` and `cat run`
 *   after the close follow it and wait;
 * - a later FLUSH that is the last starts it as above; failing that, the
 *   RELEASE does (an exiting process's close: a killed background child),
 *   uninterrupted, and a failure then ends the job as lost, with a log
 *   line (nobody's close can be told);
 * - a read of a read-write handle starts what it wrote first, as before.
 *
 * Locking. The FUSE layer may call read, write, flush and poll on one
 * handle at once (from different threads), and the watched command's I/O
 * thread calls the handle's wake at any time until its watch is removed;
 * release comes last, after every other call on the handle.
 * - j->mu guards what changes after open: cmd (and the reference it
 *   holds), cur, watch, data, too_big, exit_done.
 * - Nothing waits under j->mu: no jobs_run() (network), no
 *   job_wait() with a timeout. To use the command outside j->mu, take
 *   a reference of your own under it.
 * - The watch, if any, is on j->cmd and is registered under j->mu (that
 *   takes only the command's lock). Whoever replaces j->cmd takes the
 *   watch out with it under j->mu, then, with j->mu released, unwatches
 *   and puts the command (drop_cmd): job_unwatch() waits out a running
 *   wake, which may take the caller's own locks. */
#include "jobfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "holders.h"
#include "intent.h"
#include "log.h"
#include "jobs.h"
#include "runs.h"

struct jobfile {
	bool run;   /* run (else exit) */
	bool own;   /* opened for writing: follows its own command */
	bool crawl; /* a crawl's (intent.h): reads what is there, never waits */
	pthread_mutex_t mu;
	pthread_mutex_t claim_mu; /* one claim at a time (disk, no network) */
	struct buf data;     /* run: the script so far; exit: the exit text */
	bool too_big;	     /* run: the script passed RUNS_MAX_SCRIPT */
	bool exit_done;	     /* exit: data holds the exit text */
	struct job *cmd;     /* followed by this handle; NULL before any */
	struct job *pending; /* run: claimed for data, not yet started */
	unsigned long long cur; /* run: read offset in its output */
	int watch;		/* on cmd, or -1 */
};

static struct jobfile *jf(struct tree_handle *h)
{
	return h->priv;
}

static bool gave_up(struct tree_handle *h)
{
	return h->interrupted && h->interrupted(h->interrupted_arg);
}

static int open_common(struct tree_handle *h, const struct node *n, bool run)
{
	struct jobfile *j = xcalloc(1, sizeof *j);
	j->run = run;
	j->own = h->acc != O_RDONLY;
	j->crawl = !j->own && intent_crawler(h->pid);
	j->watch = -1;
	buf_init(&j->data);
	pthread_mutex_init(&j->mu, NULL);
	pthread_mutex_init(&j->claim_mu, NULL);
	struct jobs *js = tree_jobs(h->tree);
	/* jobs/<job>/exit follows its job; a reader of the pod's own run and
	 * exit the newest job as of its open. */
	if (n->job)
		j->cmd = job_get(n->job);
	else if (!j->own && js && h->pod_id)
		j->cmd = jobs_latest(js, h->pod_id);
	h->priv = j;
	return 0;
}

static int run_open(struct tree_handle *h, const struct node *n)
{
	return open_common(h, n, true);
}

static int follow_open(struct tree_handle *h, const struct node *n)
{
	return n->job ? open_common(h, n, true) : -ENOENT;
}

static int exit_open(struct tree_handle *h, const struct node *n)
{
	return open_common(h, n, false);
}

/* Without j->mu: the handle's watch on c removed (no wake runs once this
 * returns), then its reference dropped. */
static void drop_cmd(struct job *c, int watch)
{
	if (c && watch >= 0)
		job_unwatch(c, watch);
	job_put(c);
}

/* At a FLUSH: whether this close is the last of the open and can be told
 * an errno: no other process holds it for writing any more (holders.h;
 * unknown counts as held), and the closer is not exiting (its requests
 * are interrupted, and nobody reads its close's result: the RELEASE that
 * follows starts the job, uninterrupted). */
bool jobfile_last_close(struct tree_handle *h, pid_t closer)
{
	const char *base = strrchr(h->path, '/');
	return !proc_exiting(closer) &&
	       fd_holders(h->mnt, base ? base + 1 : h->path) == 0;
}

static void wake(struct tree_handle *h)
{
	if (h->wake)
		h->wake(h->wake_arg);
}

/* The job of what this handle wrote, claimed (the pod's latest from now
 * on, waiting for its script) if it is not yet: the handle follows it.
 * 0 or -errno. */
static int claim_pending(struct tree_handle *h)
{
	struct jobfile *j = jf(h);
	/* Two processes' closes at once claim one job. */
	pthread_mutex_lock(&j->claim_mu);
	pthread_mutex_lock(&j->mu);
	bool need = j->data.len && !j->too_big && !j->pending;
	pthread_mutex_unlock(&j->mu);
	struct jobs *js = tree_jobs(h->tree);
	struct job *jb = NULL;
	int rc = 0;
	if (need)
		rc = js ? jobs_claim_new(js, h->pod_id, &jb) : -ENOTCONN;
	if (rc || !need) {
		pthread_mutex_unlock(&j->claim_mu);
		return rc;
	}
	pthread_mutex_lock(&j->mu);
	struct job *old = j->cmd;
	int watch = j->watch;
	j->pending = jb;
	j->cmd = job_get(jb);
	j->watch = -1;
	j->cur = 0;
	pthread_mutex_unlock(&j->mu);
	pthread_mutex_unlock(&j->claim_mu);
	tree_jobs_changed(h->tree, h->pod_id, NULL); /* a new jobs/latest */
	drop_cmd(old, watch);
	/* A poll waiting on the old command looks again, at the new one. */
	wake(h);
	return 0;
}

/* Everything written since the last start becomes one job, as one script
 * (byte for byte), claimed first if it is not: the caller waits until it
 * has started (or could not: then the claimed job ends as lost, and the
 * log says why). Nothing written: nothing to start. */
static int start_pending(struct tree_handle *h, bool interruptible)
{
	struct jobfile *j = jf(h);
	int rc = claim_pending(h);
	pthread_mutex_lock(&j->mu);
	struct buf script = j->data; /* taken whole */
	bool too_big = j->too_big;
	struct job *jb = j->pending;
	buf_init(&j->data);
	j->too_big = false;
	j->pending = NULL;
	pthread_mutex_unlock(&j->mu);
	struct jobs *js = tree_jobs(h->tree);
	if (too_big) {
		plog("run", h->path,
		     "the script is over the limit of %zu bytes: nothing was "
		     "sent",
		     RUNS_MAX_SCRIPT);
		rc = -E2BIG;
	} else if (!rc && jb) {
		rc = jobs_start(js, jb, script.data, script.len,
				interruptible ? h->interrupted : NULL,
				h->interrupted_arg);
		if (rc)
			plog("run", h->path, "job %s did not start: %s",
			     job_name(jb), strerror(-rc));
	}
	if (rc && jb && js)
		jobs_abandon(js, jb);
	job_put(jb);
	buf_free(&script);
	return rc;
}

/* Output as it comes; blocks (interruptibly) until there is some or the
 * command ends. A lost job's stream ends with EIO after its last byte, not
 * a plain end of file: `cat run` fails, so a script can tell the output is
 * cut short (exit says "lost"). out stays a plain file of the bytes. */
static int run_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	(void)off; /* a stream: read on from where the handle is */
	struct jobfile *j = jf(h);
	if (j->own) {
		int rc = start_pending(h, true);
		if (rc)
			return rc;
	}
	for (;;) {
		pthread_mutex_lock(&j->mu);
		struct job *c = j->cmd ? job_get(j->cmd) : NULL;
		bool eof = false;
		ssize_t n = c ? job_read(c, j->cur, out, size, &eof) : 0;
		if (n > 0)
			j->cur += (unsigned long long)n;
		unsigned long long cur = j->cur;
		pthread_mutex_unlock(&j->mu);
		int rc = 0;
		bool again = false;
		if (eof && job_state(c) == JOB_LOST && !j->crawl)
			rc = -EIO;
		else if (!c || n || eof || j->crawl)
			rc = (int)n; /* before any job: empty; or -errno */
		else if (h->nonblock)
			rc = -EAGAIN;
		else if (gave_up(h))
			rc = -EINTR;
		else {
			job_wait(c, cur, 0.2);
			again = true;
		}
		job_put(c);
		if (!again)
			return rc;
	}
}

/* Writes gather one script, whatever their sizes; it starts at close
 * (flush) or at the handle's next read. One too big is dropped whole:
 * E2BIG here and at close. A pod that will never run it fails the job's
 * first write, which a shell reports (it ignores close's error). */
static int run_write(struct tree_handle *h, const char *data, size_t size,
		     off_t off)
{
	(void)off;
	struct jobfile *j = jf(h);
	pthread_mutex_lock(&j->mu);
	bool first = !j->data.len && !j->too_big;
	pthread_mutex_unlock(&j->mu);
	struct runs *r = tree_runs(h->tree);
	if (first && size) {
		int rc = r ? runs_check(r, h->pod_id) : -ENOTCONN;
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&j->mu);
	if (!j->too_big && j->data.len + size > RUNS_MAX_SCRIPT) {
		j->too_big = true;
		buf_free(&j->data);
		buf_init(&j->data);
	}
	if (!j->too_big)
		buf_add(&j->data, data, size);
	bool refused = j->too_big;
	pthread_mutex_unlock(&j->mu);
	return refused ? -E2BIG : (int)size;
}

/* One holder closed it (see the top of this file): the last one starts
 * the job (close returns once it has started, or fails with the errno);
 * another one claims it, and the last holder's close or the RELEASE sends
 * it. */
static int run_flush(struct tree_handle *h, pid_t closer)
{
	struct jobfile *j = jf(h);
	if (!j->own)
		return 0;
	pthread_mutex_lock(&j->mu);
	bool too_big = j->too_big, some = j->data.len || j->pending;
	pthread_mutex_unlock(&j->mu);
	if (too_big)
		return -E2BIG;
	if (!some)
		return 0;
	return jobfile_last_close(h, closer) ? start_pending(h, true)
					     : claim_pending(h);
}

/* Fills the handle with the exit text once the command has ended (a wait
 * until then; for a crawl, 1 at once: empty while it runs). Once
 * exit_done, data no longer changes. */
static int exit_fill(struct tree_handle *h)
{
	struct jobfile *j = jf(h);
	pthread_mutex_lock(&j->mu);
	bool done = j->exit_done;
	struct job *c = j->cmd && !done ? job_get(j->cmd) : NULL;
	pthread_mutex_unlock(&j->mu);
	if (done)
		return 0;
	int rc = 0;
	if (c && j->crawl && !job_wait_done(c, 0)) {
		job_put(c); /* a crawl reads it empty while the job runs */
		return 1;
	}
	while (c && !job_wait_done(c, 0.2)) {
		if (h->nonblock) {
			rc = -EAGAIN;
			break;
		}
		if (gave_up(h)) {
			rc = -EINTR;
			break;
		}
	}
	pthread_mutex_lock(&j->mu);
	if (!rc && !j->exit_done) {
		if (c)
			job_exit_text(c, &j->data);
		else
			buf_addc(&j->data, '\n'); /* before any command */
		j->exit_done = true;
	}
	pthread_mutex_unlock(&j->mu);
	job_put(c);
	return rc;
}

static int exit_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	int rc = exit_fill(h);
	if (rc)
		return rc < 0 ? rc : 0;
	struct jobfile *j = jf(h); /* data no longer changes */
	if (off < 0 || (size_t)off >= j->data.len)
		return 0;
	size_t n = j->data.len - (size_t)off;
	if (n > size)
		n = size;
	memcpy(out, j->data.data + off, n);
	return (int)n;
}

static void wake_cb(void *arg)
{
	wake(arg);
}

/* Watch first, then look: what arrives in between calls wake. */
static bool poll_common(struct tree_handle *h, bool arm)
{
	struct jobfile *j = jf(h);
	bool ready = true;
	pthread_mutex_lock(&j->mu);
	if (j->cmd && (j->run || !j->exit_done)) {
		if (arm && j->watch < 0)
			j->watch = job_watch(j->cmd, wake_cb, h);
		ready = j->run ? job_wait(j->cmd, j->cur, 0)
			       : job_wait_done(j->cmd, 0);
	}
	pthread_mutex_unlock(&j->mu);
	return ready;
}

static void release_common(struct tree_handle *h)
{
	struct jobfile *j = jf(h);
	pthread_mutex_lock(&j->mu);
	struct job *c = j->cmd;
	int watch = j->watch;
	j->cmd = NULL;
	j->watch = -1;
	pthread_mutex_unlock(&j->mu);
	drop_cmd(c, watch); /* no wake from now on */
	pthread_mutex_destroy(&j->mu);
	pthread_mutex_destroy(&j->claim_mu);
	buf_free(&j->data);
	free(j);
	h->priv = NULL;
}

/* The last holder closed it: what was written starts. */
static void run_release(struct tree_handle *h)
{
	if (jf(h)->own)
		start_pending(h, false); /* a failure: logged, job lost */
	release_common(h);
}

const struct file_hooks run_hooks = {
    .open = run_open,
    .read = run_read,
    .write = run_write,
    .flush = run_flush,
    .poll = poll_common,
    .release = run_release,
};

/* jobs/<job>/follow: the job's whole output from its start, ending when
 * it ends (a reader of its run, bound to the job). */
const struct file_hooks follow_hooks = {
    .open = follow_open,
    .read = run_read,
    .poll = poll_common,
    .release = release_common,
};

const struct file_hooks exit_hooks = {
    .open = exit_open,
    .read = exit_read,
    .poll = poll_common,
    .release = release_common,
};

/* ---- jobs/<job>/cmd, out and signal ---- */

/* A cmd handle: the script as of open (for reads) and what this handle
 * wrote (a waiting job's script, sent at close). mu guards all but job,
 * pod_id and text, which do not change after open. */
struct cmdfile {
	struct job *job;
	char *pod_id;
	struct buf text; /* the script as of open */
	pthread_mutex_t mu;
	struct buf data; /* written, not yet started */
	bool written, too_big;
	bool claimed; /* at a flush: the job is the pod's latest */
};

static int cmd_open(struct tree_handle *h, const struct node *n)
{
	if (!n->job)
		return -ENOENT;
	if (h->acc != O_RDONLY && job_state(n->job) != JOB_WAITING)
		return -EBUSY; /* a started job's script stays as it ran */
	struct cmdfile *c = xcalloc(1, sizeof *c);
	c->job = job_get(n->job);
	c->pod_id = n->pod_id ? xstrdup(n->pod_id) : NULL;
	buf_init(&c->text);
	buf_init(&c->data);
	pthread_mutex_init(&c->mu, NULL);
	if (h->acc != O_WRONLY)
		job_cmd(c->job, &c->text);
	h->priv = c;
	return 0;
}

static int cmd_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	struct cmdfile *c = h->priv;
	if (off < 0 || (size_t)off >= c->text.len)
		return 0;
	size_t n = c->text.len - (size_t)off;
	if (n > size)
		n = size;
	memcpy(out, c->text.data + off, n);
	return (int)n;
}

/* As run's: writes gather one script, whatever their sizes; too big is
 * dropped whole (E2BIG here and at close); a pod that will never run it
 * fails the first write. */
static int cmd_write(struct tree_handle *h, const char *data, size_t size,
		     off_t off)
{
	struct cmdfile *c = h->priv;
	pthread_mutex_lock(&c->mu);
	bool first = !c->written;
	pthread_mutex_unlock(&c->mu);
	struct runs *r = tree_runs(h->tree);
	if (first && size) {
		int rc = r ? runs_check(r, c->pod_id) : -ENOTCONN;
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&c->mu);
	c->written = true;
	size_t end = off < 0 ? c->data.len : (size_t)off;
	if (!c->too_big &&
	    (end > RUNS_MAX_SCRIPT || size > RUNS_MAX_SCRIPT - end)) {
		c->too_big = true;
		buf_free(&c->data);
		buf_init(&c->data);
	}
	if (!c->too_big) {
		while (c->data.len < end) /* a hole */
			buf_addc(&c->data, '\0');
		if (c->data.len > end + size) { /* within what is there */
			memcpy(c->data.data + end, data, size);
		} else {
			c->data.len = end;
			buf_add(&c->data, data, size);
		}
	}
	bool refused = c->too_big;
	pthread_mutex_unlock(&c->mu);
	return refused ? -E2BIG : (int)size;
}

/* What was written starts the job: 0 once it has started, or -errno (a
 * failure is logged, and a claimed job ends as lost). */
static int cmd_start(struct tree_handle *h, bool interruptible)
{
	struct cmdfile *c = h->priv;
	struct jobs *js = tree_jobs(h->tree);
	pthread_mutex_lock(&c->mu);
	bool too_big = c->too_big, written = c->written, claimed = c->claimed;
	struct buf script = c->data;
	buf_init(&c->data);
	c->written = c->too_big = c->claimed = false;
	pthread_mutex_unlock(&c->mu);
	int rc = 0;
	if (too_big) {
		plog("run", h->path,
		     "the script is over the limit of %zu bytes: nothing was "
		     "sent",
		     RUNS_MAX_SCRIPT);
		rc = -E2BIG;
	} else if (written && script.len) {
		rc = js ? jobs_start(js, c->job, script.data, script.len,
				     interruptible ? h->interrupted : NULL,
				     h->interrupted_arg)
			: -ENOTCONN;
		if (rc)
			plog("run", h->path, "the job did not start: %s",
			     strerror(-rc));
		else
			tree_jobs_changed(h->tree, c->pod_id, NULL);
	}
	if (rc && claimed && js)
		jobs_abandon(js, c->job);
	buf_free(&script);
	return rc;
}

/* One holder closed it: the last one starts the job, and its close returns
 * once it has started or fails with the errno; another one claims it (the
 * pod's latest, waiting for its script), sent when the last holder closes
 * (cmd_release). */
static int cmd_flush(struct tree_handle *h, pid_t closer)
{
	struct cmdfile *c = h->priv;
	pthread_mutex_lock(&c->mu);
	bool claimed = c->claimed;
	bool claim = c->data.len && !c->too_big && !claimed;
	bool too_big = c->too_big;
	pthread_mutex_unlock(&c->mu);
	if (too_big)
		return -E2BIG;
	if (!claim && !claimed)
		return 0;
	if (jobfile_last_close(h, closer))
		return cmd_start(h, true);
	if (!claim)
		return 0;
	struct jobs *js = tree_jobs(h->tree);
	int rc = js ? jobs_claim(js, c->job) : -ENOTCONN;
	if (rc)
		return rc;
	pthread_mutex_lock(&c->mu);
	c->claimed = true;
	pthread_mutex_unlock(&c->mu);
	tree_jobs_changed(h->tree, c->pod_id, NULL); /* a new jobs/latest */
	return 0;
}

static int cmd_size(struct tree *t, const struct node *n, off_t *size)
{
	(void)t;
	struct buf b;
	buf_init(&b);
	if (n->job)
		job_cmd(n->job, &b);
	*size = (off_t)b.len;
	buf_free(&b);
	return 0;
}

static void cmd_release(struct tree_handle *h)
{
	struct cmdfile *c = h->priv;
	if (h->acc != O_RDONLY)
		cmd_start(h, false);
	job_put(c->job);
	free(c->pod_id);
	buf_free(&c->text);
	buf_free(&c->data);
	pthread_mutex_destroy(&c->mu);
	free(c);
	h->priv = NULL;
}

/* out, signal: the handle holds its job. */
static int hold_job(struct tree_handle *h, const struct node *n)
{
	if (!n->job)
		return -ENOENT;
	h->priv = job_get(n->job);
	return 0;
}

static void put_job(struct tree_handle *h)
{
	job_put(h->priv);
	h->priv = NULL;
}

/* A regular file: what is there at off, never a wait (0 at the end, for
 * now; tail -f and less look again). */
static int out_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	if (off < 0)
		return -EINVAL;
	bool eof;
	ssize_t n = job_read(h->priv, (unsigned long long)off, out, size, &eof);
	return (int)n;
}

static int out_size(struct tree *t, const struct node *n, off_t *size)
{
	(void)t;
	*size = n->job ? (off_t)job_size(n->job) : 0;
	return 0;
}

/* How long a signal waits for a job that has just started to tell its
 * process group. */
#define SIGNAL_WAIT 5.0

/* `echo TERM > signal`: to the job's whole process group on the pod. */
static int signal_write(struct tree_handle *h, const char *data, size_t size,
			off_t off)
{
	(void)off;
	char name[32];
	size_t a = 0, b = size;
	while (a < b && strchr(" \t\r\n", data[a]))
		a++;
	while (b > a && strchr(" \t\r\n", data[b - 1]))
		b--;
	if (a == b || b - a >= sizeof name)
		return -EINVAL;
	memcpy(name, data + a, b - a);
	name[b - a] = '\0';
	struct jobs *js = tree_jobs(h->tree);
	int rc = js ? job_signal(js, h->priv, name, h->interrupted,
				 h->interrupted_arg)
		    : -ESRCH;
	/* A job that has just started (or whose last holder has just closed
	 * its run) may not have told its process group yet: while it runs or
	 * is about to, that is asked again for a little while. */
	double until = now_monotonic() + SIGNAL_WAIT;
	while (rc == -ESRCH && js &&
	       (job_state(h->priv) == JOB_RUNNING || job_pending(h->priv)) &&
	       !gave_up(h) && now_monotonic() < until) {
		job_wait_done(h->priv, 0.05);
		rc = job_signal(js, h->priv, name, h->interrupted,
				h->interrupted_arg);
	}
	if (rc)
		plog("signal", h->path, "%s not sent: %s", name, strerror(-rc));
	return rc ? rc : (int)size;
}

/* The last signal sent and a newline, or an empty line. */
static void signal_text(struct job *jb, struct buf *b)
{
	if (jb)
		job_last_signal(jb, b);
	buf_addc(b, '\n');
}

static int signal_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	struct buf b;
	buf_init(&b);
	signal_text(h->priv, &b);
	int n = 0;
	if (off >= 0 && (size_t)off < b.len) {
		n = (int)(b.len - (size_t)off < size ? b.len - (size_t)off
						     : size);
		memcpy(out, b.data + off, (size_t)n);
	}
	buf_free(&b);
	return n;
}

static int signal_size(struct tree *t, const struct node *n, off_t *size)
{
	(void)t;
	struct buf b;
	buf_init(&b);
	signal_text(n->job, &b);
	*size = (off_t)b.len;
	buf_free(&b);
	return 0;
}

const struct file_hooks cmd_hooks = {
    .open = cmd_open,
    .read = cmd_read,
    .write = cmd_write,
    .flush = cmd_flush,
    .release = cmd_release,
    .size = cmd_size,
};

const struct file_hooks cmd_ro_hooks = {
    .open = cmd_open,
    .read = cmd_read,
    .release = cmd_release,
    .size = cmd_size,
};

const struct file_hooks out_hooks = {
    .open = hold_job,
    .read = out_read,
    .release = put_job,
    .size = out_size,
};

const struct file_hooks signal_hooks = {
    .open = hold_job,
    .read = signal_read,
    .write = signal_write,
    .release = put_job,
    .size = signal_size,
};
