/* ssh_output.c — a command's output as readers see it: the capped buffer
 * the I/O thread writes into (its first cap/2 bytes and a ring of its last
 * cap/2), readers' cursors and the "bytes dropped" marker, waiting and
 * watching for new output, the exit text, and the command's refcount.
 * Touches no socket: the I/O thread (ssh_session.c) feeds it. */
#include "ssh_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"

#define HUGE_PAGE ((size_t)2 << 20)

#define LOST_MARKER "\n[primefs: connection lost]\n"

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
/* Grows a buffer by doubling while small; past a huge page it goes to its
 * full size at once (pages not yet touched cost no memory) and asks for
 * huge pages where the system allows it: a 64 MiB command otherwise pays
 * 16K page faults, some 7% of the CPU of reading it. */
static void grow_to(char **p, size_t *alloc, size_t need, size_t max)
{
	if (need <= *alloc)
		return;
	size_t n = *alloc ? *alloc : 4096;
	while (n < need)
		n *= 2;
	if (n > HUGE_PAGE)
		n = max;
	if (n > max)
		n = max;
	*p = xrealloc(*p, n);
	*alloc = n;
	if (n >= 2 * HUGE_PAGE) {
		uintptr_t from = ((uintptr_t)*p + HUGE_PAGE - 1) &
				 ~(uintptr_t)(HUGE_PAGE - 1);
		uintptr_t to =
		    ((uintptr_t)*p + n) & ~(uintptr_t)(HUGE_PAGE - 1);
		if (to > from)
			madvise((void *)from, to - from, MADV_HUGEPAGE);
	}
}

/* The command sshd runs, by the user's login shell, whatever it is (one
 * line, no quote but the outer ones: sh, bash, zsh, fish and csh all take
 * it): a POSIX sh that reads the script from stdin into a private file,
 * checks that every byte came (a connection cut mid-way must not run half
 * a script), merges stderr into stdout, gives it an empty stdin, and execs
 * the user's shell ($SHELL, else sh) on it; the file is unlinked first and
 * read through the open descriptor. sshd already made it a session (and
 * process group) leader; exec keeps it, so the exit status or signal is the
 * script's. */
#define WRAPPER                                                                \
	"exec sh -c 'umask 077; "                                              \
	"f=$(mktemp \"${TMPDIR:-/tmp}/primefs-job.XXXXXX\") || exit 125; "     \
	"cat >\"$f\"; n=$(wc -c <\"$f\"); "                                    \
	"if [ \"$n\" -ne \"$1\" ]; then rm -f \"$f\"; "                        \
	"echo \"primefs: the script came incomplete ($n of $1 bytes), not "    \
	"run\" >&2; exit 125; fi; "                                            \
	"exec 3<\"$f\" 2>&1 </dev/null; rm -f \"$f\"; "                        \
	"exec \"${SHELL:-sh}\" /dev/fd/3' primefs-job %zu"

struct ssh_cmd *cmd_new(size_t cap, const char *script, size_t len)
{
	struct ssh_cmd *c = xcalloc(1, sizeof *c);
	atomic_init(&c->refs, 2); /* the caller's and the I/O thread's */
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (cap < 2)
		cap = 2;
	c->head_cap = cap / 2;
	c->ring_cap = cap - c->head_cap;
	c->next_watch_id = 1;
	struct buf b;
	buf_init(&b);
	buf_printf(&b, WRAPPER, len);
	c->cmdline = buf_steal(&b);
	c->input = xmalloc(len + 1);
	memcpy(c->input, script, len);
	c->input_len = len;
	c->st = C_QUEUED;
	return c;
}

/* Under c->lock: room for up to `want` more bytes, contiguous, where the
 * next ones go. The I/O thread fills it with the lock released (libssh2
 * reads straight into it), then commits what it got. Readers never see
 * the room: it lies past `total`, and the ring bytes it overwrites count
 * as dropped (tail_start) from now on. */
char *cmd_reserve(struct ssh_cmd *c, size_t want, size_t *room)
{
	char *at;
	if (c->head_len < c->head_cap) {
		*room = min_sz(want, c->head_cap - c->head_len);
		grow_to(&c->head, &c->head_alloc, c->head_len + *room,
			c->head_cap);
		at = c->head + c->head_len;
	} else {
		unsigned long long rel = c->total - c->head_cap;
		size_t idx = (size_t)(rel % c->ring_cap);
		*room = min_sz(want, c->ring_cap - idx);
		if (c->ring_alloc < c->ring_cap)
			grow_to(&c->ring, &c->ring_alloc, idx + *room,
				c->ring_cap);
		at = c->ring + idx;
	}
	c->reserved = *room;
	return at;
}

/* Under c->lock: n of the reserved bytes are written. */
void cmd_commit(struct ssh_cmd *c, size_t n)
{
	if (c->head_len < c->head_cap)
		c->head_len += n;
	c->total += n;
	c->reserved = 0;
}

/* Under c->lock. */
static void cmd_append(struct ssh_cmd *c, const char *p, size_t n)
{
	while (n) {
		size_t room;
		char *at = cmd_reserve(c, n, &room);
		memcpy(at, p, room);
		cmd_commit(c, room);
		p += room;
		n -= room;
	}
}

/* Under c->lock: the first position past the head still readable. The ring
 * holds the ring_cap bytes before total + reserved. */
static unsigned long long tail_start(const struct ssh_cmd *c)
{
	unsigned long long end = c->total + c->reserved;
	unsigned long long from = end > c->ring_cap ? end - c->ring_cap : 0;
	return from > c->head_len ? from : c->head_len;
}

size_t ssh_cmd_read(struct ssh_cmd *c, struct ssh_cursor *cur, char *buf,
		    size_t n, bool *eof)
{
	size_t got = 0;
	pthread_mutex_lock(&c->lock);
	while (got < n && cur->pos < c->total) {
		unsigned long long pos = cur->pos;
		size_t chunk;
		if (pos < c->head_len) {
			chunk = min_sz(n - got, c->head_len - (size_t)pos);
			memcpy(buf + got, c->head + pos, chunk);
		} else if (pos < tail_start(c)) {
			/* The reader's place was dropped: say so, jump to the
			 * tail. */
			unsigned long long from = tail_start(c);
			char m[80];
			int len = snprintf(m, sizeof m,
					   "\n[primefs: %llu bytes dropped]\n",
					   from - pos);
			chunk = min_sz(n - got, (size_t)len);
			memcpy(buf + got, m, chunk);
			got += chunk;
			cur->pos = from;
			cur->marker_done = true;
			continue;
		} else {
			size_t idx =
			    (size_t)((pos - c->head_cap) % c->ring_cap);
			chunk = min_sz(n - got, c->ring_cap - idx);
			if (chunk > c->total - pos)
				chunk = (size_t)(c->total - pos);
			memcpy(buf + got, c->ring + idx, chunk);
		}
		got += chunk;
		cur->pos += chunk;
	}
	*eof = got == 0 && c->done && cur->pos >= c->total;
	pthread_mutex_unlock(&c->lock);
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

bool ssh_cmd_wait_done(struct ssh_cmd *c, double timeout)
{
	struct timespec ts;
	monotonic_abs(&ts, timeout);
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) ==
		    ETIMEDOUT)
			break;
	bool r = c->done;
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
	struct watcher *w = xcalloc(1, sizeof *w);
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&c->lock);
	w->id = c->next_watch_id++;
	w->next = c->watchers;
	c->watchers = w;
	pthread_mutex_unlock(&c->lock);
	return w->id;
}

void ssh_cmd_unwatch(struct ssh_cmd *c, int id)
{
	pthread_mutex_lock(&c->lock);
	for (struct watcher **pp = &c->watchers; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct watcher *w = *pp;
			*pp = w->next;
			free(w);
			break;
		}
	/* A call already under way may still use arg: wait it out, unless it
	 * is this very call that unwatches. */
	while (c->notifying && !pthread_equal(c->notifier, pthread_self()))
		pthread_cond_wait(&c->cond, &c->lock);
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
	while (c->watchers) {
		struct watcher *w = c->watchers;
		c->watchers = w->next;
		free(w);
	}
	free(c->head);
	free(c->ring);
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
	size_t n = 0;
	for (struct watcher *w = c->watchers; w; w = w->next)
		n++;
	if (!n) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->notifying = true;
	c->notifier = pthread_self();
	/* Copies, so that fn may unwatch (which frees its node). */
	struct watcher few[8];
	struct watcher *copy = n <= 8 ? few : xmalloc(n * sizeof *copy);
	n = 0;
	for (struct watcher *w = c->watchers; w; w = w->next)
		copy[n++] = *w;
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++)
		copy[i].fn(copy[i].arg);
	if (copy != few)
		free(copy);
	pthread_mutex_lock(&c->lock);
	c->notifying = false;
	pthread_cond_broadcast(&c->cond);
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
	pthread_mutex_lock(&c->lock);
	if (lost)
		cmd_append(c, LOST_MARKER, sizeof LOST_MARKER - 1);
	c->lost = lost;
	c->exit_status = status;
	c->exit_signal = sig ? xstrdup(sig) : NULL;
	c->done = true;
	pthread_mutex_unlock(&c->lock);
	c->dirty = true;
}
