/* ssh_output.c — a command's output as readers see it: the file the I/O
 * thread writes it into as it arrives (the caller's, or an unlinked
 * temporary one), what happens when a write fails (counted, discarded,
 * logged), readers' cursors (pread), waiting and watching for new
 * output, the exit text, and the command's refcount. Also the wrapper the
 * pod runs. Touches no socket: the I/O thread (ssh_session.c) feeds it. */
#include "ssh_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

void monotonic_abs(struct timespec *ts, double timeout)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (timeout < 0)
		timeout = 0;
	if (timeout > 1e6)
		timeout = 1e6;
	long long ns =
	    ts->tv_nsec + (long long)((timeout - (long long)timeout) * 1e9);
	ts->tv_sec += (time_t)timeout + (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
}
/* The command sshd runs. sshd hands it to the user's login shell as
 * `$SHELL -c '<it>'`, and that shell runs the job itself, as it runs the
 * command of `ssh host 'script'`: one start of the login shell per job
 * (bash reads ~/.bashrc once, zsh ~/.zshenv once), whatever shell it is,
 * provided it takes POSIX sh syntax (sh, bash, dash, zsh, ksh, busybox;
 * not csh or fish). On one line, it reports its pid on stderr (PID_TAG):
 * sshd (no pty) made the shell a session and process group leader, so its
 * pid is the job's process group id, and the exit status or signal is the
 * shell's, the script's. It then gets the script into a variable (named
 * JOB_VAR, unset again before the script runs), merges stderr into
 * stdout, gives stdin /dev/null and evals the script: eval, like `sh -c`,
 * parses and runs it a command at a time, in the same shell. The
 * channel's stdout is then the script's output alone; its stderr carries
 * the pid line and what the wrapper itself says (read in ssh_session.c).
 *
 * A long script comes on stdin: a POSIX sh reads it into a private file,
 * checks that every byte came (a connection cut mid-way must not run half
 * a script), and prints it back with an "x" that keeps $(...) from eating
 * trailing newlines (cut off again). */
#define JOB_VAR "primefs_job"
#define RUN_JOB                                                                \
	"exec 2>&1 </dev/null; eval \"unset " JOB_VAR "; ${" JOB_VAR "%%x}\""
#define WRAPPER                                                                \
	"echo \"" PID_TAG "$$\" >&2; " JOB_VAR "=$(exec sh -c 'umask 077; "    \
	"f=$(mktemp \"${TMPDIR:-/tmp}/primefs-job.XXXXXX\") || exit 125; "     \
	"cat >\"$f\"; n=$(wc -c <\"$f\"); "                                    \
	"if [ \"$n\" -ne \"$1\" ]; then rm -f \"$f\"; "                        \
	"echo \"primefs: the script came incomplete ($n of $1 bytes), not "    \
	"run\" >&2; exit 125; fi; "                                            \
	"cat \"$f\"; rm -f \"$f\"; echo x' primefs-job %zu) || exit "          \
	"125; " RUN_JOB

/* A short script (up to SHORT_SCRIPT bytes, no NUL) rides in the exec
 * request itself, which arrives whole or not at all (and short enough, at
 * four bytes a character at most, for any shell's word limit): no
 * temporary file, no mktemp, cat or wc on the pod, which were most of a
 * job's start time there. It
 * is written as a printf format that only [A-Za-z0-9 _,./:=+@-] and
 * three-digit octal escapes make up, so the login shell passes it
 * through its single quotes untouched; a final "x" keeps $(...) from
 * eating trailing newlines and is cut off again. The rest as WRAPPER. */
#define SHORT_SCRIPT 1024
#define SHORT_WRAPPER                                                          \
	"echo \"" PID_TAG "$$\" >&2; " JOB_VAR "=$(printf '%sx'); " RUN_JOB

/* The script as SHORT_WRAPPER's printf format, or false if it does not
 * qualify. */
static bool short_format(const char *script, size_t len, struct buf *out)
{
	if (len > SHORT_SCRIPT || memchr(script, 0, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)script[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') ||
		    (ch && strchr(" _,./:=+@-", ch)))
			buf_printf(out, "%c", ch);
		else
			buf_printf(out, "\\%03o", ch);
	}
	return true;
}

int cmd_open_output(const char *pod_key, int out_fd)
{
	int fd;
	if (out_fd >= 0) {
		fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			int e = errno;
			plog("ssh", pod_key, "cannot dup the output file: %s",
			     strerror(e));
			return -e;
		}
		return fd;
	}
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "%s/primefs-out.XXXXXX", dir);
	fd = mkostemp(path.data, O_CLOEXEC);
	int e = errno;
	if (fd >= 0)
		unlink(path.data);
	else
		plog("ssh", pod_key,
		     "cannot make a temporary file for the output in %s: %s",
		     dir, strerror(e));
	buf_free(&path);
	return fd >= 0 ? fd : -e;
}

struct ssh_cmd *cmd_new(const char *pod_key, const char *conn,
			const char *script, size_t len, int fd)
{
	struct ssh_cmd *c = xcalloc(1, sizeof *c);
	atomic_init(&c->refs, 2); /* the caller's and the I/O thread's */
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->fd = fd;
	c->pod_key = xstrdup(pod_key);
	c->conn = xstrdup(conn);
	watchers_init(&c->watchers);
	struct buf b, f;
	buf_init(&b);
	buf_init(&f);
	if (short_format(script, len, &f)) {
		buf_printf(&b, SHORT_WRAPPER, f.data ? f.data : "");
		c->input = xmalloc(1);
		c->input_len = 0; /* EOF at once */
	} else {
		buf_printf(&b, WRAPPER, len);
		c->input = xmalloc(len + 1);
		memcpy(c->input, script, len);
		c->input_len = len;
	}
	buf_free(&f);
	c->cmdline = buf_steal(&b);
	c->st = C_QUEUED;
	return c;
}

/* Writes n bytes at the end of the file whatever happened before; the
 * bytes written, *err set on failure. The I/O thread's: it alone writes
 * and moves total. */
static size_t append(struct ssh_cmd *c, const char *p, size_t n, int *err)
{
	size_t done = 0;
	*err = 0;
	while (done < n) {
		ssize_t w =
		    pwrite(c->fd, p + done, n - done, (off_t)(c->total + done));
		if (w > 0) {
			done += (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else {
			*err = w < 0 ? errno : EIO;
			break;
		}
	}
	if (done) {
		pthread_mutex_lock(&c->lock);
		c->total += done;
		pthread_mutex_unlock(&c->lock);
		c->dirty = true;
	}
	return done;
}

void cmd_output(struct ssh_cmd *c, const char *p, size_t n)
{
	if (!c->write_err) {
		int err;
		size_t w = append(c, p, n, &err);
		if (!err)
			return;
		c->write_err = err;
		p += w;
		n -= w;
		plog("ssh", c->pod_key,
		     "cannot write a command's output to its file: %s; the "
		     "rest of it is read and discarded",
		     strerror(err));
	}
	c->lost_bytes += n;
}

/* A line of the channel's stderr is complete (eol), or the buffer full. */
static void err_line_done(struct ssh_cmd *c, bool eol)
{
	size_t tag = sizeof PID_TAG - 1;
	size_t nd = c->err_len > tag ? c->err_len - tag : 0;
	bool is_pid = eol && !c->pid_seen && nd > 0 && nd < 19 &&
		      !memcmp(c->err_line, PID_TAG, tag);
	long v = 0;
	for (size_t i = tag; is_pid && i < c->err_len; i++) {
		char d = c->err_line[i];
		is_pid = d >= '0' && d <= '9';
		v = v * 10 + (d - '0');
	}
	if (is_pid) {
		c->pid_seen = true;
		pthread_mutex_lock(&c->lock);
		c->pgid = v;
		pthread_mutex_unlock(&c->lock);
		c->dirty = true;
	} else {
		cmd_output(c, c->err_line, c->err_len);
		if (eol)
			cmd_output(c, "\n", 1);
	}
	c->err_len = 0;
}

void cmd_stderr(struct ssh_cmd *c, const char *p, size_t n, bool end)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			err_line_done(c, true);
			continue;
		}
		c->err_line[c->err_len++] = p[i];
		if (c->err_len == sizeof c->err_line)
			err_line_done(c, false);
	}
	if (end && c->err_len)
		err_line_done(c, false);
}

long ssh_cmd_pgid(struct ssh_cmd *c)
{
	pthread_mutex_lock(&c->lock);
	long r = c->pgid;
	pthread_mutex_unlock(&c->lock);
	return r;
}

size_t ssh_cmd_read(struct ssh_cmd *c, struct ssh_cursor *cur, char *buf,
		    size_t n, bool *eof)
{
	pthread_mutex_lock(&c->lock);
	unsigned long long total = c->total;
	bool done = c->done;
	pthread_mutex_unlock(&c->lock);
	size_t got = 0;
	if (cur->pos < total) {
		unsigned long long left = total - cur->pos;
		size_t want = left < n ? (size_t)left : n;
		while (got < want) {
			ssize_t r = pread(c->fd, buf + got, want - got,
					  (off_t)(cur->pos + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		cur->pos += got;
	}
	*eof = got == 0 && done && cur->pos >= total;
	return got;
}

bool ssh_cmd_wait(struct ssh_cmd *c, const struct ssh_cursor *cur,
		  double timeout)
{
	struct timespec ts;
	monotonic_abs(&ts, timeout);
	pthread_mutex_lock(&c->lock);
	while (c->total <= cur->pos && !c->done)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) ==
		    ETIMEDOUT)
			break;
	bool r = c->total > cur->pos || c->done;
	pthread_mutex_unlock(&c->lock);
	return r;
}

bool ssh_cmd_done(struct ssh_cmd *c)
{
	pthread_mutex_lock(&c->lock);
	bool r = c->done;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Waits up to timeout until the command has ended, or (want_pgid) until
 * its pgid is known, or until interrupted(arg) says so (checked every
 * 0.1 s, c->lock not held): false then. c->lock held on return. */
static bool wait_locked(struct ssh_cmd *c, double timeout, bool want_pgid,
			bool (*interrupted)(void *arg), void *arg)
{
	double end = now_monotonic() + timeout;
	pthread_mutex_lock(&c->lock);
	while (!c->done && !(want_pgid && c->pgid > 0)) {
		if (interrupted) {
			pthread_mutex_unlock(&c->lock);
			bool stop = interrupted(arg);
			pthread_mutex_lock(&c->lock);
			if (stop)
				return false;
		}
		double left = end - now_monotonic();
		if (left <= 0)
			break;
		struct timespec ts;
		monotonic_abs(&ts, left < 0.1 ? left : 0.1);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	return true;
}

int ssh_cmd_wait_done(struct ssh_cmd *c, double timeout,
		      bool (*interrupted)(void *arg), void *arg)
{
	bool whole = wait_locked(c, timeout, false, interrupted, arg);
	int r = c->done ? 1 : whole ? 0 : -EINTR;
	pthread_mutex_unlock(&c->lock);
	return r;
}

long ssh_cmd_wait_pgid(struct ssh_cmd *c, double timeout,
		       bool (*interrupted)(void *arg), void *arg)
{
	bool whole = wait_locked(c, timeout, true, interrupted, arg);
	long r = c->done ? 0 : c->pgid > 0 ? c->pgid : whole ? 0 : -EINTR;
	pthread_mutex_unlock(&c->lock);
	return r;
}

void ssh_cmd_exit_text(struct ssh_cmd *c, struct buf *out)
{
	pthread_mutex_lock(&c->lock);
	if (c->done) {
		if (c->lost)
			buf_adds(out, "lost\n");
		else if (c->exit_signal)
			buf_printf(out, "signal %s\n", c->exit_signal);
		else
			buf_printf(out, "%d\n", c->exit_status);
	}
	pthread_mutex_unlock(&c->lock);
}

unsigned long long ssh_cmd_total(struct ssh_cmd *c)
{
	pthread_mutex_lock(&c->lock);
	unsigned long long t = c->total;
	pthread_mutex_unlock(&c->lock);
	return t;
}

int ssh_cmd_watch(struct ssh_cmd *c, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&c->lock);
	int id = watchers_add(&c->watchers, fn, arg);
	pthread_mutex_unlock(&c->lock);
	return id;
}

void ssh_cmd_unwatch(struct ssh_cmd *c, int id)
{
	pthread_mutex_lock(&c->lock);
	watchers_remove(&c->watchers, id, &c->lock, &c->cond);
	pthread_mutex_unlock(&c->lock);
}

struct ssh_cmd *ssh_cmd_get(struct ssh_cmd *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void ssh_cmd_put(struct ssh_cmd *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	watchers_free(&c->watchers);
	if (c->fd >= 0)
		close(c->fd);
	free(c->pod_key);
	free(c->conn);
	free(c->exit_signal);
	free(c->cmdline);
	free(c->input);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* From the I/O thread, no lock held: wake waiters and call watchers. */
void cmd_notify(struct ssh_cmd *c)
{
	c->dirty = false;
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->cond);
	watchers_notify(&c->watchers, &c->lock, &c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* The start result, for the ssh_run() that waits on it. */
void cmd_started(struct ssh_cmd *c, int rc)
{
	pthread_mutex_lock(&c->lock);
	c->started = true;
	c->start_rc = rc;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void cmd_finish(struct ssh_cmd *c, int status, const char *sig, bool lost)
{
	cmd_stderr(c, NULL, 0, true);
	/* The output file holds the command's bytes alone: what went wrong is
	 * in the log and the exit text. */
	if (c->lost_bytes)
		plog("ssh", c->pod_key,
		     "%llu bytes of a command's output were lost: %s",
		     c->lost_bytes, strerror(c->write_err));
	pthread_mutex_lock(&c->lock);
	c->lost = lost;
	c->exit_status = status;
	c->exit_signal = sig ? xstrdup(sig) : NULL;
	c->done = true;
	pthread_mutex_unlock(&c->lock);
	c->dirty = true;
}
