/* ssh.c — see ssh.h.
 *
 * Threads. libssh2 sessions are not thread-safe, so each pod's session has
 * one I/O thread that alone touches its socket and LIBSSH2_SESSION, in
 * non-blocking mode: it connects, checks the host key, authenticates, then
 * multiplexes every channel of the session with poll() on what
 * libssh2_session_block_directions() asks for, plus an eventfd that
 * ssh_run() writes when it queues a command. A slow pod therefore only
 * slows its own thread.
 *
 * Locks. pool->lock guards the table of sessions; sess->lock guards a
 * session's queue of commands not yet taken by its thread; cmd->lock guards
 * a command's output and status. Each is held for memory work only, never
 * across network I/O: readers copy from a command's buffer while its
 * thread reads the next packet. Order: pool, then sess; cmd alone.
 *
 * Output. stdout and stderr become one stream in the order their packets
 * arrived. A command keeps its first cap/2 bytes and a ring of its last
 * cap/2; what falls between is dropped, and a reader whose cursor lands
 * there gets a marker line before it continues at the tail. The thread
 * never stops reading a channel (there is no back-pressure to stall sshd),
 * so a reader that keeps up loses nothing.
 *
 * Failures. A session that dies ends its running commands with a marker
 * line and "connection lost"; commands queued on it that were never sent
 * are retried once on a fresh session, which is how the next ssh_run()
 * reconnects transparently. A pod that sends nothing for DEAD_AFTER
 * keepalive intervals while commands run is dead too (a frozen host keeps
 * the connection, and its kernel acknowledges our packets). A command
 * ssh_run() gave up on before its exec request went out is never sent
 * (ssh_cmd.req). */
#include "ssh.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define DEFAULT_TIMEOUT	  10.0
#define DEFAULT_KEEPALIVE 15.0
#define DEFAULT_CAP	  ((size_t)64 << 20)
/* One libssh2_channel_read() at most (fewer where the buffer wraps): few
 * lock round trips per megabyte. */
#define READ_CHUNK (256 * 1024)
/* Bytes one command may take per loop round before the others get theirs. */
#define ROUND_BUDGET ((size_t)4 << 20)
/* The receive window we grant sshd per channel. Bigger is slower with
 * libssh2: it queues the whole window as a list of packets that every read
 * walks (16 MiB halved the throughput on a busy machine). */
#define CHANNEL_WINDOW LIBSSH2_CHANNEL_WINDOW_DEFAULT

#define HUGE_PAGE ((size_t)2 << 20)

/* A session whose pod sent nothing for this many keepalive intervals while
 * commands run is dead. */
#define DEAD_AFTER 3
/* Keepalive replies a session may pile up in libssh2 before it is renewed
 * (some 100 bytes each, walked by every channel read). */
#define MAX_PROBES 256

#define LOST_MARKER "\n[primefs: connection lost]\n"

/* The comment of the known_hosts lines primefs writes: the only lines
 * ssh_pool_prune may remove. */
#define KH_COMMENT "primefs"

/* Internal start result: the session died before the command was sent, so
 * ssh_run() may safely try again on a new session. */
#define RETRY_RC (-ECONNRESET)

struct watcher {
	int id;
	void (*fn)(void *arg);
	void *arg;
	struct watcher *next;
};

enum cstate {
	C_QUEUED,  /* taken from the queue, waiting for its turn to open */
	C_OPENING, /* channel open sent (only one at a time: libssh2 keeps the
		      open state per session) */
	C_EXEC,	   /* exec request under way */
	C_RUNNING,
	C_CLOSING, /* EOF seen; waiting for the close and the exit status */
	C_FREEING, /* done; libssh2_channel_free() under way */
};

struct ssh_cmd {
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* start result, output, end, notify done */

	/* Under lock. */
	bool started;
	int start_rc;
	/* Whether the exec request may still go out: ssh_run() cancels a
	 * request it gives up on only while it waits, and the thread sends
	 * only one it has marked sent, both under lock: a command ssh_run()
	 * returned an error for never starts. */
	enum { REQ_WAITING, REQ_SENT, REQ_CANCELLED } req;
	char *head; /* stream positions [0, head_len) */
	size_t head_len, head_alloc, head_cap;
	char *ring; /* position p >= head_cap at (p - head_cap) % ring_cap */
	size_t ring_alloc, ring_cap;
	unsigned long long total; /* bytes produced so far */
	size_t reserved;	  /* being written past total (cmd_reserve) */
	bool done, lost;
	int exit_status;
	char *exit_signal;
	struct watcher *watchers;
	int next_watch_id;
	bool notifying;
	pthread_t notifier;

	/* The I/O thread's alone. */
	enum cstate st;
	LIBSSH2_CHANNEL *ch;
	char *cmdline;
	double deadline;
	bool dirty;
	bool exec_begun; /* process_startup called (it may have gone out) */
	struct ssh_cmd *next; /* in sess->q (under sess->lock) or sess->cmds */
};

struct ssh_pool;

/* libssh2's allocations carry their size and size class. */
#define MIN_CLASS   13 /* 8 KiB */
#define N_CLASSES   6  /* .. 256 KiB */
#define CACHE_DEPTH 64
struct blk {
	union {
		struct {
			size_t size;
			int cls; /* -1: not cached */
		} h;
		max_align_t align;
	} u;
};

struct sess {
	struct ssh_pool *pool;
	char *key, *conn, *user, *host;
	int port;
	pthread_t thread;
	int wakefd;
	atomic_bool stop;

	pthread_mutex_t lock;
	struct ssh_cmd *q_head, *q_tail; /* under lock */
	bool dead;	   /* under lock: takes no more commands */
	bool exited;	   /* under lock: thread may be joined */
	struct sess *next; /* under pool->lock */

	/* The I/O thread's alone. */
	int sock;
	LIBSSH2_SESSION *ss;
	struct ssh_cmd *cmds; /* taken from the queue, in order */
	struct ssh_cmd *out_owner;
	bool idle_unread;
	int known_types; /* host key types known_hosts holds for this host */
	unsigned long long rx; /* bytes libssh2 took from the socket */
	double heard;	       /* when the last of them came */
	int probes; /* keepalive replies libssh2 keeps (see sess_loop) */
	struct blk *cache[N_CLASSES][CACHE_DEPTH]; /* see ss_alloc */
	int cached[N_CLASSES];
};

struct ssh_pool {
	char *known_hosts, *key_path;
	bool key_explicit;
	double timeout, keepalive;
	size_t output_cap;
	pthread_mutex_t kh_lock; /* the known_hosts file, between learning and
				    pruning */
	pthread_mutex_t lock;
	struct sess *live;    /* one per pod key */
	struct sess *retired; /* stopping or dead, not yet joined */
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;

/* ---- small helpers ---- */

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Unpadded, as OpenSSH prints fingerprints. */
static void b64_encode(struct buf *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf_addc(out, b64chars[(v >> 18) & 63]);
		buf_addc(out, b64chars[(v >> 12) & 63]);
		if (i + 1 < n)
			buf_addc(out, b64chars[(v >> 6) & 63]);
		if (i + 2 < n)
			buf_addc(out, b64chars[v & 63]);
	}
}

/* Skips whitespace, stops at '=' or anything else outside the alphabet. */
static void b64_decode(struct buf *out, const char *s, size_t n)
{
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		const char *q = s[i] ? strchr(b64chars, s[i]) : NULL;
		if (!q) {
			if (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ||
			    s[i] == '\t')
				continue;
			break;
		}
		v = (v << 6) | (unsigned)(q - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_addc(out, (char)((v >> bits) & 0xff));
		}
	}
}

/* An SSH wire string at *p (uint32 length + bytes); false past the end. */
static bool wire_string(const unsigned char **p, const unsigned char *end,
			const unsigned char **s, size_t *len)
{
	if (end - *p < 4)
		return false;
	size_t n = ((size_t)(*p)[0] << 24) | ((size_t)(*p)[1] << 16) |
		   ((size_t)(*p)[2] << 8) | (*p)[3];
	if ((size_t)(end - *p - 4) < n)
		return false;
	*s = *p + 4;
	*len = n;
	*p += 4 + n;
	return true;
}

static void monotonic_abs(struct timespec *ts, double timeout)
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

/* ---- commands: the output buffer ---- */

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

static struct ssh_cmd *cmd_new(size_t cap, const char *cmdline)
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
	c->cmdline = xstrdup(cmdline);
	c->st = C_QUEUED;
	return c;
}

/* Under c->lock: room for up to `want` more bytes, contiguous, where the
 * next ones go. The I/O thread fills it with the lock released (libssh2
 * reads straight into it), then commits what it got. Readers never see
 * the room: it lies past `total`, and the ring bytes it overwrites count
 * as dropped (tail_start) from now on. */
static char *cmd_reserve(struct ssh_cmd *c, size_t want, size_t *room)
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
static void cmd_commit(struct ssh_cmd *c, size_t n)
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
			buf_adds(out, "connection lost\n");
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
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* From the I/O thread, no lock held: wake waiters and call watchers. */
static void cmd_notify(struct ssh_cmd *c)
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
static void cmd_started(struct ssh_cmd *c, int rc)
{
	pthread_mutex_lock(&c->lock);
	c->started = true;
	c->start_rc = rc;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void cmd_finish(struct ssh_cmd *c, int status, const char *sig,
		       bool lost)
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

/* ---- the session's socket ---- */

static void wake(struct sess *s)
{
	uint64_t one = 1;
	ssize_t r = write(s->wakefd, &one, sizeof one);
	(void)r; /* EAGAIN: the counter is already non-zero, it will wake */
}

static void drain_wake(struct sess *s)
{
	uint64_t v;
	ssize_t r = read(s->wakefd, &v, sizeof v);
	(void)r;
}

/* Waits for the socket (events), the deadline, or a stop request: 0,
 * -ETIMEDOUT or -ECANCELED. */
static int sock_wait(struct sess *s, short events, double deadline)
{
	for (;;) {
		if (atomic_load(&s->stop))
			return -ECANCELED;
		double left = deadline - now_monotonic();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pf[2] = {{s->sock, events, 0},
				       {s->wakefd, POLLIN, 0}};
		int r = poll(pf, 2, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && pf[1].revents)
			drain_wake(s);
		if (r > 0 && pf[0].revents)
			return 0;
	}
}

static short lib_events(struct sess *s)
{
	int d = libssh2_session_block_directions(s->ss);
	short ev = 0;
	if (d & LIBSSH2_SESSION_BLOCK_INBOUND)
		ev |= POLLIN;
	if (d & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		ev |= POLLOUT;
	return ev ? ev : POLLIN;
}

static const char *last_error(struct sess *s)
{
	char *msg = NULL;
	libssh2_session_last_error(s->ss, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

static int tcp_connect(struct sess *s, double deadline)
{
	const struct ssh_pool *p = s->pool;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[16];
	snprintf(port, sizeof port, "%d", s->port);
	int g = getaddrinfo(s->host, port, &hints, &res);
	if (g) {
		plog("ssh", s->key, "cannot resolve %s: %s", s->host,
		     gai_strerror(g));
		return -EHOSTUNREACH;
	}
	int err = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
				SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			if (errno != EINPROGRESS) {
				err = errno;
				close(fd);
				continue;
			}
			s->sock = fd;
			int w = sock_wait(s, POLLOUT, deadline);
			socklen_t len = sizeof err;
			if (w == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
						 &len) < 0)
				err = errno;
			if (w)
				err = -w;
			if (w || err) {
				s->sock = -1;
				close(fd);
				if (w == -ECANCELED)
					break;
				continue;
			}
		}
		s->sock = fd;
		err = 0;
		break;
	}
	freeaddrinfo(res);
	if (s->sock < 0 && err == ECANCELED)
		return -ECANCELED; /* stopped: nobody waits for a reason */
	if (s->sock < 0) {
		if (err == ETIMEDOUT)
			plog("ssh", s->key,
			     "connect to %s port %d: timed out after %gs",
			     s->host, s->port, p->timeout);
		else
			plog("ssh", s->key, "connect to %s port %d: %s",
			     s->host, s->port, strerror(err ? err : EIO));
		return -EHOSTUNREACH;
	}
	int one = 1;
	setsockopt(s->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* A pod that vanishes without a FIN: our keepalives stay unacked and
	 * the kernel gives up on the connection after this long. */
	setsockopt(s->sock, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	unsigned ut = (unsigned)((p->timeout + 2 * p->keepalive) * 1000);
	setsockopt(s->sock, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut);
	return 0;
}

/* ---- known hosts ---- */

static const struct {
	int hostkey;   /* LIBSSH2_HOSTKEY_TYPE_* */
	int knownhost; /* LIBSSH2_KNOWNHOST_KEY_* */
	const char *alg, *name;
} key_types[] = {
    {LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519",
     "ED25519"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
     "ecdsa-sha2-nistp256", "ECDSA-256"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
     "ecdsa-sha2-nistp384", "ECDSA-384"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
     "ecdsa-sha2-nistp521", "ECDSA-521"},
    {LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa", "RSA"},
    {LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss", "DSA"},
};
#define N_KEY_TYPES (sizeof key_types / sizeof key_types[0])

/* A pod's host key is recorded under its id, as ssh's HostKeyAlias does:
 * addresses are recycled, ids are not. An id fit to be a known_hosts name
 * (no pattern, list, hash or marker characters). */
static bool kh_name_ok(const char *name)
{
	if (!*name || strlen(name) > 255 || *name == '|' || *name == '@' ||
	    *name == '#' || *name == '[')
		return false;
	for (const char *q = name; *q; q++)
		if (!(isalnum((unsigned char)*q) || strchr("._-", *q)))
			return false;
	return true;
}

/* Reads the file line by line rather than with
 * libssh2_knownhost_readfile(): that one stops at the first line it cannot
 * parse (a certificate authority, a key type libssh2 1.10 lacks), which
 * would silently forget every later host — and a forgotten host would be
 * learned again instead of checked. Missing file: an empty set. */
static LIBSSH2_KNOWNHOSTS *kh_load(struct sess *s)
{
	const char *path = s->pool->known_hosts;
	LIBSSH2_KNOWNHOSTS *k = libssh2_knownhost_init(s->ss);
	if (!k) {
		plog("ssh", s->key, "libssh2_knownhost_init failed");
		return NULL;
	}
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return k;
		plog("ssh", s->key, "cannot read known_hosts %s: %s", path,
		     strerror(errno));
		libssh2_knownhost_free(k);
		return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int skipped = 0;
	while ((len = getline(&line, &cap, f)) > 0)
		if (libssh2_knownhost_readline(k, line, (size_t)len,
					       LIBSSH2_KNOWNHOST_FILE_OPENSSH))
			skipped++;
	free(line);
	fclose(f);
	(void)skipped; /* such lines cannot name a key libssh2 could use */
	return k;
}

/* Port -1: the exact name, as ssh looks up a HostKeyAlias. */
static int kh_check(LIBSSH2_KNOWNHOSTS *k, const char *name, const char *key,
		    size_t len, int knownhost_type)
{
	return libssh2_knownhost_checkp(k, name, -1, key, len,
					LIBSSH2_KNOWNHOST_TYPE_PLAIN |
					    LIBSSH2_KNOWNHOST_KEYENC_RAW |
					    knownhost_type,
					NULL);
}

/* Before the handshake: which key types are known for this host (a check
 * with a key no entry can hold reports a mismatch exactly when an entry of
 * that type exists), and asks the server for those first — as OpenSSH
 * does —, so that a host known by its ed25519 key is not offered a
 * different type that would look like a change. */
static void kh_prefer_known(struct sess *s, LIBSSH2_KNOWNHOSTS *k)
{
	struct buf pref;
	buf_init(&pref);
	s->known_types = 0;
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (kh_check(k, s->key, "\n", 1, key_types[i].knownhost) ==
		    LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
			s->known_types |= 1 << i;
			buf_printf(&pref, "%s%s", pref.len ? "," : "",
				   key_types[i].alg);
		}
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (!(s->known_types & (1 << i)))
			buf_printf(&pref, "%s%s", pref.len ? "," : "",
				   key_types[i].alg);
	/* Names this libssh2 lacks are dropped by it; an error here only
	 * means its default order stays. */
	libssh2_session_method_pref(s->ss, LIBSSH2_METHOD_HOSTKEY, pref.data);
	buf_free(&pref);
}

static void mkdir_parents(const char *path)
{
	char *d = xstrdup(path);
	for (char *q = d + 1; *q; q++)
		if (*q == '/') {
			*q = '\0';
			mkdir(d, 0700);
			*q = '/';
		}
	free(d);
}

static int kh_learn(struct sess *s, LIBSSH2_KNOWNHOSTS *k, const char *key,
		    size_t len, int kt, const char *fp)
{
	struct ssh_pool *p = s->pool;
	const char *path = p->known_hosts;
	const char *name = s->key;
	struct libssh2_knownhost *entry = NULL;
	char line[8192];
	size_t outlen = 0;
	if (libssh2_knownhost_addc(
		k, name, NULL, key, len, KH_COMMENT, sizeof KH_COMMENT - 1,
		LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
		    key_types[kt].knownhost,
		&entry) ||
	    libssh2_knownhost_writeline(k, entry, line, sizeof line - 1,
					&outlen,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH)) {
		plog("ssh", s->key, "cannot record the host key of %s: %s",
		     name, last_error(s));
		return -EIO;
	}
	if (!outlen || line[outlen - 1] != '\n')
		line[outlen++] = '\n';
	/* Appended in one write, so that other lines (and other sessions
	 * learning at the same time) are left as they are; the lock keeps
	 * ssh_pool_prune from rewriting the file meanwhile. */
	pthread_mutex_lock(&p->kh_lock);
	mkdir_parents(path);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	int err =
	    fd < 0 || write(fd, line, outlen) != (ssize_t)outlen ? errno : 0;
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&p->kh_lock);
	if (err) {
		plog("ssh", s->key, "cannot write known_hosts %s: %s", path,
		     strerror(err ? err : EIO));
		return -EIO;
	}
	plog("ssh", s->key,
	     "learned host key of pod %s at %s port %d (%s SHA256:%s) into %s",
	     name, s->host, s->port, key_types[kt].name, fp, path);
	return 0;
}

/* After the handshake, before anything else is sent. */
static int check_host_key(struct sess *s, LIBSSH2_KNOWNHOSTS *k)
{
	size_t len = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(s->ss, &len, &type);
	size_t kt = 0;
	while (kt < N_KEY_TYPES && key_types[kt].hostkey != type)
		kt++;
	if (!key || kt == N_KEY_TYPES) {
		plog("ssh", s->key,
		     "%s port %d sent a host key of unknown type", s->host,
		     s->port);
		return -EIO;
	}
	struct buf fp;
	buf_init(&fp);
	const char *h =
	    libssh2_hostkey_hash(s->ss, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (h)
		b64_encode(&fp, (const unsigned char *)h, 32);
	else
		buf_adds(&fp, "?");
	int r = kh_check(k, s->key, key, len, key_types[kt].knownhost);
	int rc = 0;
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
		rc = 0;
	} else if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		plog("ssh", s->key,
		     "HOST KEY CHANGED for pod %s (%s port %d): it now "
		     "presents %s key SHA256:%s, which does not match the one "
		     "in %s; refusing to connect (nothing was sent). If the "
		     "pod was really rebuilt, remove its line from that file",
		     s->key, s->host, s->port, key_types[kt].name, fp.data,
		     s->pool->known_hosts);
		rc = -EACCES;
	} else if (r == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && s->known_types) {
		/* Known by keys of other types only, which this server no
		 * longer offers (they were asked for first): as suspect as a
		 * changed key, but maybe only a key type libssh2 cannot use. */
		struct buf types;
		buf_init(&types);
		for (size_t i = 0; i < N_KEY_TYPES; i++)
			if (s->known_types & (1 << i))
				buf_printf(&types, "%s%s", types.len ? "/" : "",
					   key_types[i].name);
		plog("ssh", s->key,
		     "HOST KEY CHANGED for pod %s (%s port %d): it presents "
		     "%s key SHA256:%s, but %s knows it by %s keys only; "
		     "refusing to connect (nothing was sent). If this key is "
		     "right, add it to that file under the pod's id "
		     "(ssh-keyscan -p %d %s, first word replaced by %s)",
		     s->key, s->host, s->port, key_types[kt].name, fp.data,
		     s->pool->known_hosts, types.data, s->port, s->host,
		     s->key);
		buf_free(&types);
		rc = -EACCES;
	} else if (r == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
		rc = kh_learn(s, k, key, len, (int)kt, fp.data);
	} else {
		plog("ssh", s->key, "known_hosts check of pod %s failed: %s",
		     s->key, last_error(s));
		rc = -EIO;
	}
	buf_free(&fp);
	return rc;
}

/* ---- authentication ---- */

/* The key type of a private key file ("ssh-rsa", "ssh-ed25519", ...), from
 * its .pub file, its PEM header, or the public half an OpenSSH-format key
 * carries in clear. */
static void keyfile_type(const char *path, char *out, size_t outlen)
{
	snprintf(out, outlen, "unknown");
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s.pub", path);
	FILE *f = fopen(b.data, "re");
	if (f) {
		char word[64];
		if (fscanf(f, "%63s", word) == 1) {
			snprintf(out, outlen, "%s", word);
			fclose(f);
			buf_free(&b);
			return;
		}
		fclose(f);
	}
	buf_reset(&b);
	f = fopen(path, "re");
	if (!f) {
		buf_free(&b);
		return;
	}
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0 && b.len < (1 << 20))
		buf_add(&b, tmp, n);
	fclose(f);
	if (!b.data) {
		buf_free(&b);
		return;
	}
	static const char openssh[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	const char *body = strstr(b.data, openssh);
	if (strstr(b.data, "-----BEGIN RSA PRIVATE KEY-----")) {
		snprintf(out, outlen, "ssh-rsa");
	} else if (strstr(b.data, "-----BEGIN EC PRIVATE KEY-----")) {
		snprintf(out, outlen, "ecdsa");
	} else if (strstr(b.data, "-----BEGIN DSA PRIVATE KEY-----")) {
		snprintf(out, outlen, "ssh-dss");
	} else if (body) {
		body += sizeof openssh - 1;
		const char *end = strstr(body, "-----END");
		struct buf raw;
		buf_init(&raw);
		b64_decode(&raw, body,
			   end ? (size_t)(end - body) : strlen(body));
		static const char magic[] = "openssh-key-v1";
		const unsigned char *p = (const unsigned char *)raw.data;
		const unsigned char *e = p + raw.len, *s;
		size_t sl;
		if (raw.len > sizeof magic && !memcmp(p, magic, sizeof magic)) {
			p += sizeof magic;
			/* cipher, kdf, kdf options, key count, public key */
			if (wire_string(&p, e, &s, &sl) &&
			    wire_string(&p, e, &s, &sl) &&
			    wire_string(&p, e, &s, &sl) && e - p >= 4) {
				p += 4;
				const unsigned char *pub;
				size_t pl;
				if (wire_string(&p, e, &pub, &pl) &&
				    wire_string(&pub, pub + pl, &s, &sl))
					snprintf(out, outlen, "%.*s", (int)sl,
						 (const char *)s);
			}
		}
		buf_free(&raw);
	}
	buf_free(&b);
}

static bool blob_is_rsa(const unsigned char *blob, size_t len)
{
	const unsigned char *s;
	size_t sl;
	return wire_string(&blob, blob + len, &s, &sl) && sl == 7 &&
	       !memcmp(s, "ssh-rsa", 7);
}

/* libssh2 before 1.11 signs RSA with SHA-1 only. */
static bool rsa_sha1_only(void)
{
	return libssh2_version(0x010b00) == NULL;
}

static bool timeout_error(int r)
{
	return r == LIBSSH2_ERROR_TIMEOUT || r == LIBSSH2_ERROR_SOCKET_TIMEOUT;
}

/* 0 authenticated; 1 refused (tried keys are listed in *tried); < 0 a
 * failure that ends the attempt. The agent is driven in blocking mode with
 * the session timeout: libssh2 1.10's agent code does not resume cleanly
 * after EAGAIN, and the agent is a local socket anyway. */
static int auth_agent(struct sess *s, double deadline, struct buf *tried,
		      bool *rsa_refused)
{
	const char *sock = getenv("SSH_AUTH_SOCK");
	if (!sock || !*sock)
		return 1;
	double left = deadline - now_monotonic();
	if (left <= 0)
		return -ETIMEDOUT;
	libssh2_session_set_blocking(s->ss, 1);
	libssh2_session_set_timeout(s->ss, (long)(left * 1000) + 1);
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->ss);
	int rc = 1, n = 0;
	if (!agent || libssh2_agent_connect(agent) ||
	    libssh2_agent_list_identities(agent)) {
		buf_printf(tried, "%sagent at %s (unusable: %s)",
			   tried->len ? ", " : "", sock, last_error(s));
	} else {
		struct libssh2_agent_publickey *id = NULL, *prev = NULL;
		while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
			prev = id;
			n++;
			int r = libssh2_agent_userauth(agent, s->user, id);
			if (r == 0) {
				rc = 0;
				break;
			}
			if (blob_is_rsa(id->blob, id->blob_len))
				*rsa_refused = true;
			if (timeout_error(r)) {
				rc = -ETIMEDOUT;
				break;
			}
			if (r != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
			    r != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED &&
			    r != LIBSSH2_ERROR_AGENT_PROTOCOL) {
				rc = -EIO;
				break;
			}
		}
		if (rc)
			buf_printf(tried, "%sagent (%d key%s)",
				   tried->len ? ", " : "", n,
				   n == 1 ? "" : "s");
		libssh2_agent_disconnect(agent);
	}
	if (agent)
		libssh2_agent_free(agent);
	libssh2_session_set_blocking(s->ss, 0);
	libssh2_session_set_timeout(s->ss, (long)(s->pool->timeout * 1000));
	return rc;
}

static int auth_file(struct sess *s, const char *path, double deadline,
		     struct buf *tried, bool *rsa_refused)
{
	char type[64];
	keyfile_type(path, type, sizeof type);
	int r;
	while ((r = libssh2_userauth_publickey_fromfile_ex(
		    s->ss, s->user, (unsigned)strlen(s->user), NULL, path,
		    NULL)) == LIBSSH2_ERROR_EAGAIN) {
		int w = sock_wait(s, lib_events(s), deadline);
		if (w)
			return w;
	}
	if (r == 0)
		return 0;
	buf_printf(tried, "%skey %s (%s)", tried->len ? ", " : "", path, type);
	if (r == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
	    r == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
		/* A type we could not read (PKCS#8) may be RSA too: say so
		 * rather than nothing. */
		if (!strcmp(type, "ssh-rsa") || !strcmp(type, "unknown"))
			*rsa_refused = true;
		return 1;
	}
	if (timeout_error(r))
		return -ETIMEDOUT;
	if (r == LIBSSH2_ERROR_FILE || r == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED ||
	    r == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
		buf_printf(tried,
			   " unusable: %s (an encrypted key needs the "
			   "ssh agent)",
			   last_error(s));
		return 1;
	}
	return -EIO;
}

static int authenticate(struct sess *s)
{
	const struct ssh_pool *p = s->pool;
	double deadline = now_monotonic() + p->timeout;
	struct buf tried;
	buf_init(&tried);
	bool rsa = false;
	int r = 1;
	if (!p->key_explicit)
		r = auth_agent(s, deadline, &tried, &rsa);
	if (r == 1 && p->key_path &&
	    (p->key_explicit || access(p->key_path, R_OK) == 0))
		r = auth_file(s, p->key_path, deadline, &tried, &rsa);
	int rc = 0;
	if (r == -ETIMEDOUT) {
		plog("ssh", s->key,
		     "authentication as %s on %s port %d timed out after %gs",
		     s->user, s->host, s->port, p->timeout);
		rc = -EHOSTUNREACH;
	} else if (r == -ECANCELED) {
		rc = -ECANCELED;
	} else if (r < 0) {
		plog("ssh", s->key, "authentication as %s on %s port %d: %s",
		     s->user, s->host, s->port, last_error(s));
		rc = -EIO;
	} else if (r == 1) {
		if (!tried.len)
			buf_printf(&tried,
				   "nothing: no ssh agent, and key %s "
				   "is not readable",
				   p->key_path ? p->key_path : "(none)");
		if (rsa && rsa_sha1_only())
			plog("ssh", s->key,
			     "authentication as %s on %s port %d refused "
			     "(tried %s): an RSA key was refused: libssh2 %s "
			     "signs RSA only with SHA-1 (ssh-rsa), which "
			     "OpenSSH >= 8.8 refuses; use an ed25519 key "
			     "(ssh-keygen -t ed25519) or libssh2 >= 1.11 (or "
			     "the key is not in the pod's authorized_keys)",
			     s->user, s->host, s->port, tried.data,
			     libssh2_version(0));
		else
			plog("ssh", s->key,
			     "authentication as %s on %s port %d refused "
			     "(tried %s)",
			     s->user, s->host, s->port, tried.data);
		rc = -EACCES;
	}
	buf_free(&tried);
	return rc;
}

/* libssh2's memory, through a small cache of big blocks. It mallocs and
 * frees a buffer per packet, and glibc gave the freed top of its heap back
 * to the kernel each time, so every packet paid page faults: a tenth of the
 * CPU at full speed. Only the session's thread calls these (no lock); the
 * cache is emptied whenever the session goes idle. */
static int size_class(size_t n)
{
	for (int k = 0; k < N_CLASSES; k++)
		if (n <= (size_t)1 << (MIN_CLASS + k))
			return n > (size_t)1 << (MIN_CLASS - 1) ? k : -1;
	return -1;
}

static void *ss_alloc(size_t n, void **abstract)
{
	struct sess *s = *abstract;
	int k = size_class(n);
	struct blk *b;
	if (k >= 0 && s->cached[k])
		b = s->cache[k][--s->cached[k]];
	else
		b = malloc(sizeof *b +
			   (k >= 0 ? (size_t)1 << (MIN_CLASS + k) : n));
	if (!b)
		return NULL;
	b->u.h.size = n;
	b->u.h.cls = k;
	return b + 1;
}

static void ss_free(void *p, void **abstract)
{
	struct sess *s = *abstract;
	if (!p)
		return;
	struct blk *b = (struct blk *)p - 1;
	int k = b->u.h.cls;
	if (k >= 0 && s->cached[k] < CACHE_DEPTH)
		s->cache[k][s->cached[k]++] = b;
	else
		free(b);
}

static void *ss_realloc(void *p, size_t n, void **abstract)
{
	if (!p)
		return ss_alloc(n, abstract);
	struct blk *b = (struct blk *)p - 1;
	if (b->u.h.cls >= 0 && n <= (size_t)1 << (MIN_CLASS + b->u.h.cls) &&
	    size_class(n) == b->u.h.cls) {
		b->u.h.size = n;
		return p;
	}
	void *q = ss_alloc(n, abstract);
	if (q) {
		memcpy(q, p, n < b->u.h.size ? n : b->u.h.size);
		ss_free(p, abstract);
	}
	return q;
}

static void cache_release(struct sess *s)
{
	for (int k = 0; k < N_CLASSES; k++)
		while (s->cached[k])
			free(s->cache[k][--s->cached[k]]);
}

/* libssh2's reads from the socket, counted: a loop round in which libssh2
 * took bytes may have queued packets for a channel already visited, so the
 * thread only sleeps after a round that took none. */
static ssize_t counting_recv(libssh2_socket_t fd, void *buf, size_t len,
			     int flags, void **abstract)
{
	struct sess *s = *abstract;
	ssize_t n = recv(fd, buf, len, flags);
	if (n < 0)
		return -errno;
	s->rx += (size_t)n;
	if (n > 0)
		s->heard = now_monotonic();
	return n;
}

/* Connect, handshake, host key, authentication: 0 or -errno, logged. */
static int sess_open(struct sess *s)
{
	const struct ssh_pool *p = s->pool;
	if (!p->known_hosts) {
		plog("ssh", s->key,
		     "no known_hosts file: cannot check the host key, "
		     "refusing");
		return -EACCES;
	}
	int rc = tcp_connect(s, now_monotonic() + p->timeout);
	if (rc)
		return rc;
	s->ss = libssh2_session_init_ex(ss_alloc, ss_free, ss_realloc, s);
	if (!s->ss) {
		plog("ssh", s->key, "libssh2_session_init failed");
		return -EIO;
	}
	libssh2_session_callback_set(s->ss, LIBSSH2_CALLBACK_RECV,
				     (void *)counting_recv);
	libssh2_session_set_blocking(s->ss, 0);
	libssh2_session_set_timeout(s->ss, (long)(p->timeout * 1000));
	/* 0: libssh2 sends with MSG_NOSIGNAL. */
	libssh2_session_flag(s->ss, LIBSSH2_FLAG_SIGPIPE, 0);
	/* Replies are asked for only while commands run (sess_loop): libssh2
	 * queues them and never frees them. */
	libssh2_keepalive_config(s->ss, 0, (unsigned)p->keepalive);

	LIBSSH2_KNOWNHOSTS *k = kh_load(s);
	if (!k)
		return -EIO;
	kh_prefer_known(s, k);

	double deadline = now_monotonic() + p->timeout;
	while ((rc = libssh2_session_handshake(s->ss, s->sock)) ==
	       LIBSSH2_ERROR_EAGAIN) {
		int w = sock_wait(s, lib_events(s), deadline);
		if (w) {
			rc = w;
			break;
		}
	}
	if (rc == -ECANCELED) {
		libssh2_knownhost_free(k);
		return rc;
	}
	if (rc == -ETIMEDOUT || rc == LIBSSH2_ERROR_TIMEOUT) {
		plog("ssh", s->key,
		     "SSH handshake with %s port %d timed out after %gs",
		     s->host, s->port, p->timeout);
		libssh2_knownhost_free(k);
		return -EHOSTUNREACH;
	}
	if (rc) {
		plog("ssh", s->key,
		     "SSH handshake with %s port %d failed: %s%s", s->host,
		     s->port, last_error(s),
		     rc == LIBSSH2_ERROR_KEX_FAILURE
			 ? " (no algorithms in common; libssh2 < 1.11 cannot "
			   "use an RSA host key with SHA-2, as OpenSSH >= 8.8 "
			   "wants)"
			 : "");
		libssh2_knownhost_free(k);
		return rc == LIBSSH2_ERROR_SOCKET_RECV ||
			       rc == LIBSSH2_ERROR_SOCKET_DISCONNECT ||
			       rc == LIBSSH2_ERROR_BANNER_RECV ||
			       rc == LIBSSH2_ERROR_SOCKET_SEND
			   ? -EHOSTUNREACH
			   : -EIO;
	}
	rc = check_host_key(s, k);
	libssh2_knownhost_free(k);
	if (rc)
		return rc;
	rc = authenticate(s);
	if (rc == 0)
		stats_count(ST_SSH_SESSIONS);
	return rc;
}

/* ---- the I/O loop ---- */

/* Errors of the channel alone; anything else means the session is gone. */
static bool channel_error(int r)
{
	return r == LIBSSH2_ERROR_CHANNEL_CLOSED ||
	       r == LIBSSH2_ERROR_CHANNEL_EOF_SENT ||
	       r == LIBSSH2_ERROR_CHANNEL_FAILURE ||
	       r == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED ||
	       r == LIBSSH2_ERROR_CHANNEL_UNKNOWN ||
	       r == LIBSSH2_ERROR_CHANNEL_OUTOFORDER ||
	       r == LIBSSH2_ERROR_INVAL;
}

/* The session's failure, kept for the log line and the start results. */
struct fail {
	int code; /* for the command being started */
	struct ssh_cmd *who;
	char why[256];
	int stopped; /* commands not started because the pool closed it */
	bool renew;  /* ended by us while idle, to start afresh: no loss */
};

static void set_fail(struct sess *s, struct fail *f, struct ssh_cmd *who,
		     int code, const char *what)
{
	f->code = code;
	f->who = who;
	snprintf(f->why, sizeof f->why, "%s: %s", what, last_error(s));
}

/* A step of c that would block: wait on until its deadline, then fail the
 * session as unreachable. */
static bool await_answer(const struct ssh_pool *p, struct ssh_cmd *c,
			 struct fail *f, const char *what)
{
	if (now_monotonic() < c->deadline)
		return true;
	f->code = -EHOSTUNREACH;
	f->who = c;
	snprintf(f->why, sizeof f->why, "no answer to %s within %gs", what,
		 p->timeout);
	return false;
}

/* One step of c; false when the session failed (*f says why). */
static bool step_cmd(struct sess *s, struct ssh_cmd *c, bool *progress,
		     struct fail *f)
{
	const struct ssh_pool *p = s->pool;
	int r;
	switch (c->st) {
	case C_QUEUED:
		return true;
	case C_OPENING:
		c->ch = libssh2_channel_open_ex(
		    s->ss, "session", 7, CHANNEL_WINDOW,
		    LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
		if (c->ch) {
			/* stderr packets come out of stream 0's reads, in the
			 * order they arrived among stdout's: one stream, as
			 * produced. (MERGE never blocks.) */
			libssh2_channel_handle_extended_data2(
			    c->ch, LIBSSH2_CHANNEL_EXTENDED_DATA_MERGE);
			c->st = C_EXEC;
			c->deadline = now_monotonic() + p->timeout;
			*progress = true;
			return true;
		}
		r = libssh2_session_last_errno(s->ss);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return await_answer(p, c, f, "a channel open");
		if (channel_error(r)) {
			plog("ssh", s->key, "sshd refused a new channel: %s%s",
			     last_error(s),
			     s->cmds != c ? " (too many commands at once? "
					    "see sshd's MaxSessions)"
					  : "");
			c->st = C_FREEING; /* nothing to free: dropped below */
			cmd_started(c, -EIO);
			*progress = true;
			return true;
		}
		set_fail(s, f, c, RETRY_RC, "channel open");
		return false;
	case C_EXEC:
		if (!c->exec_begun) {
			pthread_mutex_lock(&c->lock);
			bool go = c->req != REQ_CANCELLED;
			if (go)
				c->req = REQ_SENT;
			pthread_mutex_unlock(&c->lock);
			if (!go) {
				/* Given up on while its channel opened: closed
				 * unused. */
				c->st = C_FREEING;
				*progress = true;
				return true;
			}
			c->exec_begun = true;
		}
		r = libssh2_channel_process_startup(
		    c->ch, "exec", 4, c->cmdline, (unsigned)strlen(c->cmdline));
		if (r == LIBSSH2_ERROR_EAGAIN)
			return await_answer(p, c, f, "the exec request");
		*progress = true;
		if (r == 0) {
			c->st = C_RUNNING;
			stats_count(ST_SSH_COMMANDS);
			cmd_started(c, 0);
			return true;
		}
		if (channel_error(r)) {
			plog("ssh", s->key,
			     "sshd refused to run the command: %s",
			     last_error(s));
			c->st = C_FREEING;
			cmd_started(c, -EIO);
			return true;
		}
		set_fail(s, f, c, -EIO,
			 "connection lost while starting the command (it may "
			 "have run)");
		return false;
	case C_RUNNING: {
		bool zero[2] = {false, false};
		size_t budget = ROUND_BUDGET;
		bool any = true;
		while (any && budget) {
			any = false;
			/* Stream 0 carries stderr too (MERGE, above); the
			 * stderr read is a guard that finds nothing. Both in
			 * one loop: reading one to its end first would stall
			 * once the other fills the channel window. */
			for (int stream = 0; stream < 2; stream++) {
				/* Straight into the command's buffer: one copy
				 * less per byte. */
				size_t room;
				pthread_mutex_lock(&c->lock);
				char *at = cmd_reserve(c, READ_CHUNK, &room);
				pthread_mutex_unlock(&c->lock);
				ssize_t n = libssh2_channel_read_ex(
				    c->ch,
				    stream ? SSH_EXTENDED_DATA_STDERR : 0, at,
				    room);
				pthread_mutex_lock(&c->lock);
				cmd_commit(c, n > 0 ? (size_t)n : 0);
				pthread_mutex_unlock(&c->lock);
				if (n > 0) {
					c->dirty = any = *progress = true;
					budget -= min_sz(budget, (size_t)n);
				} else if (n == 0) {
					zero[stream] = true;
				} else if (n != LIBSSH2_ERROR_EAGAIN) {
					if (channel_error((int)n)) {
						zero[0] = zero[1] = true;
						break;
					}
					set_fail(s, f, NULL, 0, "read");
					return false;
				}
			}
		}
		if (!budget)
			return true; /* more next round */
		/* Both streams at their end (libssh2 says 0 only at EOF or
		 * close), or EOF with nothing left queued. */
		if ((zero[0] && zero[1]) || libssh2_channel_eof(c->ch)) {
			c->st = C_CLOSING;
			*progress = true;
		}
		return true;
	}
	case C_CLOSING: {
		/* The exit status is only final once the channel closed. */
		r = libssh2_channel_wait_closed(c->ch);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return true;
		if (r && !channel_error(r)) {
			set_fail(s, f, NULL, 0, "waiting for the close");
			return false;
		}
		char *sig = NULL;
		size_t siglen = 0;
		libssh2_channel_get_exit_signal(c->ch, &sig, &siglen, NULL,
						NULL, NULL, NULL);
		char name[64] = "";
		if (sig && siglen)
			snprintf(name, sizeof name, "%.*s", (int)siglen, sig);
		if (sig)
			libssh2_free(s->ss, sig);
		cmd_finish(c, libssh2_channel_get_exit_status(c->ch),
			   name[0] ? name : NULL, false);
		c->st = C_FREEING;
		*progress = true;
		return true;
	}
	case C_FREEING:
		if (c->ch) {
			r = libssh2_channel_free(c->ch);
			if (r == LIBSSH2_ERROR_EAGAIN)
				return true;
			c->ch = NULL; /* other errors: libssh2 freed it */
		}
		*progress = true;
		return true;
	}
	return true;
}

/* Pulls newly queued commands onto the thread's list. */
static void take_queue(struct sess *s)
{
	pthread_mutex_lock(&s->lock);
	struct ssh_cmd *q = s->q_head;
	s->q_head = s->q_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	struct ssh_cmd **tail = &s->cmds;
	while (*tail)
		tail = &(*tail)->next;
	*tail = q;
}

/* One round over every command; false when the session failed. */
static bool step_all(struct sess *s, bool *progress, struct fail *f)
{
	/* Only one channel open at a time (libssh2 keeps its state per
	 * session): promote the first queued command when none is under
	 * way. */
	bool opening = false;
	for (struct ssh_cmd *c = s->cmds; c; c = c->next)
		if (c->st == C_OPENING)
			opening = true;
	for (struct ssh_cmd *c = s->cmds; c; c = c->next) {
		pthread_mutex_lock(&c->lock);
		bool gone = c->req == REQ_CANCELLED && c->st == C_QUEUED;
		pthread_mutex_unlock(&c->lock);
		if (gone)
			c->st = C_FREEING; /* no channel: dropped below */
	}
	if (!opening)
		for (struct ssh_cmd *c = s->cmds; c; c = c->next)
			if (c->st == C_QUEUED) {
				c->st = C_OPENING;
				c->deadline =
				    now_monotonic() + s->pool->timeout;
				break;
			}
	/* A packet libssh2 could only half send must be finished by the
	 * call that started it: another call would flush it and believe its
	 * own packet went out. So while one is pending, only its owner
	 * runs. */
	for (struct ssh_cmd *c = s->cmds; c; c = c->next) {
		if (s->out_owner && s->out_owner != c)
			continue;
		/* Only steps that call libssh2 and may send can own a
		 * half-sent packet (the bit below is the last call's). */
		bool sends = c->st == C_OPENING || c->st == C_EXEC ||
			     c->st == C_RUNNING ||
			     (c->st == C_FREEING && c->ch);
		if (!step_cmd(s, c, progress, f))
			return false;
		if (sends && (libssh2_session_block_directions(s->ss) &
			      LIBSSH2_SESSION_BLOCK_OUTBOUND))
			s->out_owner = c;
		else if (s->out_owner == c)
			s->out_owner = NULL;
		if (s->out_owner)
			break;
	}
	/* Drop the freed ones (the list's reference). */
	for (struct ssh_cmd **pp = &s->cmds; *pp;) {
		struct ssh_cmd *c = *pp;
		if (c->st == C_FREEING && !c->ch) {
			*pp = c->next;
			if (c->dirty)
				cmd_notify(c);
			if (s->out_owner == c)
				s->out_owner = NULL;
			ssh_cmd_put(c);
		} else {
			pp = &c->next;
		}
	}
	return true;
}

static void notify_all(struct sess *s)
{
	for (struct ssh_cmd *c = s->cmds; c; c = c->next)
		if (c->dirty)
			cmd_notify(c);
}

static bool writable(int fd)
{
	struct pollfd pf = {fd, POLLOUT, 0};
	return poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT);
}

/* Runs until the session fails or is stopped; fills *f. */
static void sess_loop(struct sess *s, struct fail *f)
{
	const struct ssh_pool *p = s->pool;
	double next_ka = now_monotonic() + p->keepalive;
	s->heard = now_monotonic();
	for (;;) {
		if (atomic_load(&s->stop)) {
			f->code = -EHOSTUNREACH;
			snprintf(f->why, sizeof f->why, "session closed");
			return;
		}
		take_queue(s);
		bool progress = false;
		unsigned long long rx = s->rx;
		bool ok = step_all(s, &progress, f);
		notify_all(s);
		if (!ok)
			return;
		double now = now_monotonic();
		if (s->cmds) {
			s->idle_unread = false;
		} else {
			cache_release(s);
			s->heard = now; /* nobody reads: silence says nothing */
			if (s->probes >= MAX_PROBES) {
				f->code = RETRY_RC;
				f->renew = true;
				snprintf(f->why, sizeof f->why, "renewed");
				return;
			}
		}
		/* A pod that stopped answering (a frozen host keeps the
		 * connection open, and its kernel acknowledges our packets). */
		if (now - s->heard >= DEAD_AFTER * p->keepalive) {
			f->code = RETRY_RC;
			snprintf(f->why, sizeof f->why,
				 "no answer from the pod for %.0f s (%d "
				 "keepalive intervals)",
				 now - s->heard, DEAD_AFTER);
			return;
		}
		/* Keepalives only when nothing is half sent and the socket
		 * takes a small packet at once (see step_all). While commands
		 * run and the pod has been silent, they ask for a reply —
		 * which libssh2 keeps queued until the session ends, so such a
		 * session is renewed once idle after MAX_PROBES. */
		if (now >= next_ka && !s->out_owner && writable(s->sock)) {
			bool probe =
			    s->cmds && now - s->heard >= p->keepalive / 2;
			libssh2_keepalive_config(s->ss, probe,
						 (unsigned)p->keepalive);
			int next = 0;
			int r = libssh2_keepalive_send(s->ss, &next);
			if (r && r != LIBSSH2_ERROR_EAGAIN) {
				set_fail(s, f, NULL, 0, "keepalive");
				return;
			}
			if (probe && next == (int)p->keepalive)
				s->probes++;
			next_ka = now + (next > 0 ? next : p->keepalive);
		}
		if (progress || s->rx != rx)
			continue;

		double until = next_ka;
		if (s->cmds && s->heard + DEAD_AFTER * p->keepalive < until)
			until = s->heard + DEAD_AFTER * p->keepalive;
		for (struct ssh_cmd *c = s->cmds; c; c = c->next)
			if ((c->st == C_OPENING || c->st == C_EXEC) &&
			    c->deadline < until)
				until = c->deadline;
		short ev = 0;
		if (s->cmds || !s->idle_unread)
			ev |= POLLIN;
		if (s->out_owner || (libssh2_session_block_directions(s->ss) &
				     LIBSSH2_SESSION_BLOCK_OUTBOUND))
			ev |= POLLOUT;
		struct pollfd pf[2] = {{s->sock, ev, 0},
				       {s->wakefd, POLLIN, 0}};
		double left = until - now_monotonic();
		int ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
		int r = poll(pf, 2, ms);
		if (r < 0 && errno != EINTR) {
			f->code = RETRY_RC;
			snprintf(f->why, sizeof f->why, "poll: %s",
				 strerror(errno));
			return;
		}
		if (r > 0 && pf[1].revents)
			drain_wake(s);
		if (r > 0 && pf[0].revents && !s->cmds) {
			/* Idle: no libssh2 call will read, so look for the
			 * end ourselves. Data (a server keepalive) is left for
			 * the next command's calls to process. */
			char b;
			ssize_t n =
			    recv(s->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
			if (n == 0 ||
			    (pf[0].revents & (POLLERR | POLLHUP | POLLNVAL)) ||
			    (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			     errno != EINTR)) {
				f->code = RETRY_RC;
				snprintf(f->why, sizeof f->why,
					 "closed by the pod");
				return;
			}
			if (n > 0)
				s->idle_unread = true;
		}
	}
}

/* Ends everything the thread holds: running commands get the marker and
 * "connection lost", commands not yet sent get f->code or a retry. */
static void sess_close(struct sess *s, bool was_up, struct fail *f)
{
	bool stopping = atomic_load(&s->stop);
	int running = 0;
	for (struct ssh_cmd *c = s->cmds; c; c = c->next)
		if (c->st == C_RUNNING || c->st == C_CLOSING)
			running++;
	if (was_up && !stopping && !f->renew)
		stats_count(ST_SSH_LOST);
	if (was_up && !stopping && !f->renew)
		plog("ssh", s->key, "connection to %s port %d lost: %s%s",
		     s->host, s->port, f->why,
		     running ? "; its running commands end" : "");
	if (s->ss && was_up && (stopping || f->renew))
		libssh2_session_disconnect(s->ss,
					   "session closed"); /* best effort */
	/* Nothing more will be sent: every libssh2 call below now fails at
	 * once instead of waiting on the peer. */
	if (s->sock >= 0)
		shutdown(s->sock, SHUT_RDWR);
	while (s->cmds) {
		struct ssh_cmd *c = s->cmds;
		s->cmds = c->next;
		switch (c->st) {
		case C_QUEUED:
		case C_OPENING: /* nothing of it ran */
			f->stopped += c != f->who && stopping;
			cmd_started(c, c == f->who ? f->code
				       : stopping  ? -EHOSTUNREACH
						   : RETRY_RC);
			break;
		case C_EXEC:
			cmd_started(c, c == f->who ? f->code : -EIO);
			if (c != f->who)
				plog("ssh", s->key,
				     "connection lost while starting a command "
				     "(it may have run)");
			break;
		case C_RUNNING:
		case C_CLOSING:
			cmd_finish(c, 0, NULL, true);
			break;
		case C_FREEING:
			break;
		}
		for (int i = 0;
		     c->ch && i < 100 &&
		     libssh2_channel_free(c->ch) == LIBSSH2_ERROR_EAGAIN;
		     i++)
			sleep_seconds(0.001);
		c->ch = NULL;
		if (c->dirty)
			cmd_notify(c);
		ssh_cmd_put(c); /* the thread's reference */
	}
	if (s->ss) {
		for (int i = 0; i < 100 && libssh2_session_free(s->ss) ==
					       LIBSSH2_ERROR_EAGAIN;
		     i++)
			sleep_seconds(0.001);
		s->ss = NULL;
	}
	cache_release(s);
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
}

static void *sess_main(void *arg)
{
	struct sess *s = arg;
	struct fail f = {0};
	int rc = sess_open(s);
	bool up = rc == 0;
	if (up)
		sess_loop(s, &f);
	else
		f.code = rc == -ECANCELED ? -EHOSTUNREACH : rc;
	sess_close(s, up, &f);
	/* From here the session takes nothing more; what was queued meanwhile
	 * gets the connect error, or is retried on a new session. */
	pthread_mutex_lock(&s->lock);
	s->dead = true;
	struct ssh_cmd *q = s->q_head;
	s->q_head = s->q_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	bool stopping = atomic_load(&s->stop);
	while (q) {
		struct ssh_cmd *c = q;
		q = c->next;
		f.stopped += stopping;
		cmd_started(c, stopping ? -EHOSTUNREACH
			       : up	? RETRY_RC
					: f.code);
		ssh_cmd_put(c); /* the thread's reference */
	}
	if (f.stopped)
		plog("ssh", s->key,
		     "session to %s port %d closed (pod gone or unmounting) "
		     "before %d command%s could start",
		     s->host, s->port, f.stopped, f.stopped == 1 ? "" : "s");
	pthread_mutex_lock(&s->lock);
	s->exited = true;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the pool ---- */

/* "user@host -p port", also "ssh user@host -p port", "-pPORT", "[v6]". */
static int parse_conn(const char *conn, char **user, char **host, int *port)
{
	*user = *host = NULL;
	*port = 22;
	char *copy = xstrdup(conn ? conn : "");
	char *save = NULL;
	int rc = 0;
	bool want_port = false;
	for (char *t = strtok_r(copy, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (want_port || !strncmp(t, "-p", 2)) {
			const char *num = want_port ? t : t + 2;
			want_port = !want_port && !*num;
			if (want_port)
				continue;
			char *end;
			long v = strtol(num, &end, 10);
			if (*end || v < 1 || v > 65535)
				rc = -1;
			*port = (int)v;
		} else if (!strcmp(t, "ssh") && !*host) {
			continue;
		} else if (!*host) {
			char *at = strrchr(t, '@');
			*user = xstrndup(at ? t : "root",
					 at ? (size_t)(at - t) : 4);
			char *h = at ? at + 1 : t;
			size_t hl = strlen(h);
			if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
				h++;
				hl -= 2;
			}
			*host = xstrndup(h, hl);
		} else {
			rc = -1;
		}
	}
	free(copy);
	if (want_port || !*host || !**host || !**user)
		rc = -1;
	for (const char *q = *host; !rc && *q; q++)
		if ((unsigned char)*q <= ' ' || *q == '/')
			rc = -1;
	if (rc) {
		free(*user);
		free(*host);
		*user = *host = NULL;
	}
	return rc;
}

struct ssh_pool *ssh_pool_new(const struct ssh_opts *o)
{
	pthread_mutex_lock(&init_lock);
	if (init_count++ == 0)
		libssh2_init(0);
	pthread_mutex_unlock(&init_lock);
	struct ssh_pool *p = xcalloc(1, sizeof *p);
	p->known_hosts = o->known_hosts ? xstrdup(o->known_hosts) : NULL;
	p->key_path = o->key_path ? xstrdup(o->key_path) : NULL;
	p->key_explicit = o->key_explicit;
	p->timeout = o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
	p->keepalive = o->keepalive > 0 ? o->keepalive : DEFAULT_KEEPALIVE;
	/* libssh2 counts whole seconds, and makes 1 into 2. */
	p->keepalive = (double)(long)(p->keepalive + 0.5);
	if (p->keepalive < 2)
		p->keepalive = 2;
	p->output_cap = o->output_cap ? o->output_cap : DEFAULT_CAP;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->kh_lock, NULL);
	return p;
}

static void sess_free(struct sess *s)
{
	pthread_join(s->thread, NULL);
	close(s->wakefd);
	pthread_mutex_destroy(&s->lock);
	free(s->key);
	free(s->conn);
	free(s->user);
	free(s->host);
	free(s);
}

/* Under pool->lock. */
static void retire(struct ssh_pool *p, struct sess *s)
{
	for (struct sess **pp = &p->live; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	s->next = p->retired;
	p->retired = s;
	atomic_store(&s->stop, true);
	wake(s);
}

/* Under pool->lock: unlinks the retired sessions whose thread ended, for
 * the caller to join and free once it has let go of the lock. */
static struct sess *reap(struct ssh_pool *p, bool all)
{
	struct sess *out = NULL;
	for (struct sess **pp = &p->retired; *pp;) {
		struct sess *s = *pp;
		pthread_mutex_lock(&s->lock);
		bool gone = s->exited;
		pthread_mutex_unlock(&s->lock);
		if (gone || all) {
			*pp = s->next;
			s->next = out;
			out = s;
		} else {
			pp = &s->next;
		}
	}
	return out;
}

static void free_list(struct sess *s)
{
	while (s) {
		struct sess *next = s->next;
		sess_free(s);
		s = next;
	}
}

/* A new session for the pod, its thread started with c already queued (a
 * thread that fails at once must find c to fail it). */
static struct sess *sess_start(struct ssh_pool *p, const char *key,
			       const char *conn, char *user, char *host,
			       int port, struct ssh_cmd *c)
{
	struct sess *s = xcalloc(1, sizeof *s);
	s->pool = p;
	s->key = xstrdup(key);
	s->conn = xstrdup(conn);
	s->user = user;
	s->host = host;
	s->port = port;
	s->sock = -1;
	atomic_init(&s->stop, false);
	pthread_mutex_init(&s->lock, NULL);
	c->next = NULL;
	s->q_head = s->q_tail = c;
	s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	/* The thread blocks every signal: SIGPIPE from a send to a dead peer
	 * (the agent's socket is written without MSG_NOSIGNAL) stays pending
	 * on it instead of killing the daemon, and FUSE's handlers run on its
	 * own threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = s->wakefd < 0 ? errno
			      : pthread_create(&s->thread, NULL, sess_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		plog("ssh", key, "cannot start the session thread: %s",
		     strerror(r));
		if (s->wakefd >= 0)
			close(s->wakefd);
		pthread_mutex_destroy(&s->lock);
		free(s->key);
		free(s->conn);
		free(s);
		return NULL;
	}
	s->next = p->live;
	p->live = s;
	return s;
}

/* Queues c on the pod's session, starting one if needed; false if no
 * thread could be started. */
static bool submit(struct ssh_pool *p, const char *key, const char *conn,
		   struct ssh_cmd *c)
{
	char *user, *host;
	int port;
	if (parse_conn(conn, &user, &host, &port))
		return false;
	pthread_mutex_lock(&p->lock);
	struct sess *done = reap(p, false);
	struct sess *s = p->live;
	while (s && strcmp(s->key, key))
		s = s->next;
	bool queued = false;
	if (s) {
		pthread_mutex_lock(&s->lock);
		if (!s->dead && !strcmp(s->conn, conn)) {
			c->next = NULL;
			if (s->q_tail)
				s->q_tail->next = c;
			else
				s->q_head = c;
			s->q_tail = c;
			queued = true;
		}
		pthread_mutex_unlock(&s->lock);
		if (queued) {
			wake(s);
			free(user);
			free(host);
		} else {
			retire(p, s); /* dead, or the pod moved */
		}
	}
	if (!queued) {
		s = sess_start(p, key, conn, user, host, port, c);
		queued = s != NULL;
		if (!s) {
			free(user);
			free(host);
		}
	}
	pthread_mutex_unlock(&p->lock);
	free_list(done);
	return queued;
}

/* Waits for c's start result; on interruption, or past a limit that only
 * guards against a bug turning into a hung shell (every step of the thread
 * has its own deadline), cancels it unless its exec request already went
 * out — then only the thread's answer, due within its deadline, says
 * whether it runs. */
static int wait_started(struct ssh_pool *p, const char *pod_key,
			struct ssh_cmd *c, bool (*interrupted)(void *),
			void *arg)
{
	double limit = 5 * p->timeout + 5;
	double end = now_monotonic() + limit;
	for (;;) {
		bool intr = interrupted && interrupted(arg);
		pthread_mutex_lock(&c->lock);
		if (c->started) {
			int rc = c->start_rc;
			pthread_mutex_unlock(&c->lock);
			return rc;
		}
		double now = now_monotonic();
		bool sent = c->req == REQ_SENT;
		if ((intr && !sent) || now >= end) {
			if (!sent)
				c->req = REQ_CANCELLED;
			pthread_mutex_unlock(&c->lock);
			if (intr && !sent)
				plog("ssh", pod_key,
				     "interrupted before the command was sent: "
				     "it will not run");
			else
				plog("ssh", pod_key,
				     "the command did not start within %gs; "
				     "giving up (%s)",
				     limit,
				     sent ? "it may have run"
					  : "it will not run");
			return intr && !sent ? -EINTR : -EIO;
		}
		struct timespec ts;
		monotonic_abs(&ts,
			      interrupted && end - now > 0.1 ? 0.1 : end - now);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		pthread_mutex_unlock(&c->lock);
	}
}

int ssh_run(struct ssh_pool *p, const char *pod_key, const char *conn,
	    const char *cmdline, bool (*interrupted)(void *arg), void *arg,
	    struct ssh_cmd **out)
{
	*out = NULL;
	char *user, *host;
	int port;
	if (parse_conn(conn, &user, &host, &port)) {
		plog("ssh", pod_key, "cannot parse the ssh connection \"%s\"",
		     conn ? conn : "");
		return -EIO;
	}
	free(user);
	free(host);
	if (!kh_name_ok(pod_key)) {
		plog("ssh", pod_key,
		     "a pod id unfit as a known_hosts name; refusing");
		return -EIO;
	}
	for (int attempt = 0;; attempt++) {
		struct ssh_cmd *c = cmd_new(p->output_cap, cmdline);
		if (!submit(p, pod_key, conn, c)) {
			ssh_cmd_put(c);
			ssh_cmd_put(c);
			return -EIO;
		}
		int rc = wait_started(p, pod_key, c, interrupted, arg);
		if (rc == 0) {
			*out = c;
			return 0;
		}
		ssh_cmd_put(c);
		if (rc != RETRY_RC)
			return rc;
		if (attempt == 1) {
			plog("ssh", pod_key,
			     "connection lost twice before the command could "
			     "be sent");
			return -EIO;
		}
	}
}

void ssh_pool_forget(struct ssh_pool *p, const char *pod_key)
{
	pthread_mutex_lock(&p->lock);
	struct sess *s = p->live;
	while (s && strcmp(s->key, pod_key))
		s = s->next;
	if (s)
		retire(p, s);
	struct sess *done = reap(p, false);
	pthread_mutex_unlock(&p->lock);
	free_list(done);
}

/* Of a known_hosts line: true when primefs wrote it (its comment) for a
 * pod that is not listed; its name goes to name. Anything else is kept:
 * comments, markers, lines of the user's or of ssh's. */
static bool kh_line_gone(const char *line, bool (*listed)(void *, const char *),
			 void *arg, char *name, size_t namelen)
{
	const char *f[4];
	size_t len[4] = {0, 0, 0, 0};
	const char *q = line;
	for (int i = 0; i < 4; i++) {
		while (*q == ' ' || *q == '\t')
			q++;
		f[i] = q;
		if (i == 3) {
			len[i] = strcspn(q, "\r\n");
			while (len[i] &&
			       (q[len[i] - 1] == ' ' || q[len[i] - 1] == '\t'))
				len[i]--;
			break;
		}
		len[i] = strcspn(q, " \t\r\n");
		q += len[i];
	}
	if (!len[0] || *f[0] == '#' || *f[0] == '@' || !len[2] ||
	    len[3] != sizeof KH_COMMENT - 1 ||
	    memcmp(f[3], KH_COMMENT, len[3]) || len[0] >= namelen)
		return false;
	memcpy(name, f[0], len[0]);
	name[len[0]] = '\0';
	return !kh_name_ok(name) || !listed(arg, name);
}

/* Rewrites known_hosts without primefs's lines of pods not listed: into a
 * new file renamed over it, so that a reader sees the old or the new. */
static void kh_prune(struct ssh_pool *p, bool (*listed)(void *, const char *),
		     void *arg)
{
	if (!p->known_hosts)
		return;
	struct buf keep, gone;
	buf_init(&keep);
	buf_init(&gone);
	int removed = 0;
	char err[200] = "";
	pthread_mutex_lock(&p->kh_lock);
	FILE *f = fopen(p->known_hosts, "re");
	if (f) {
		char *line = NULL, name[256];
		size_t cap = 0;
		while (getline(&line, &cap, f) > 0) {
			if (kh_line_gone(line, listed, arg, name,
					 sizeof name)) {
				removed++;
				if (gone.len < 400)
					buf_printf(&gone, "%s%s",
						   gone.len ? ", " : "", name);
				continue;
			}
			buf_adds(&keep, line);
		}
		free(line);
		fclose(f);
	}
	if (removed) {
		struct buf tmp;
		buf_init(&tmp);
		buf_printf(&tmp, "%s.XXXXXX", p->known_hosts);
		int fd = mkostemp(tmp.data, O_CLOEXEC);
		bool ok = fd >= 0 && fchmod(fd, 0600) == 0 &&
			  (!keep.len || write(fd, keep.data, keep.len) ==
					    (ssize_t)keep.len) &&
			  fsync(fd) == 0;
		if (!ok)
			snprintf(err, sizeof err, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		if (ok && rename(tmp.data, p->known_hosts)) {
			snprintf(err, sizeof err, "%s", strerror(errno));
			ok = false;
		}
		if (!ok && fd >= 0)
			unlink(tmp.data);
		buf_free(&tmp);
	}
	pthread_mutex_unlock(&p->kh_lock);
	if (removed && err[0])
		plog("ssh", "known_hosts", "cannot rewrite %s: %s",
		     p->known_hosts, err);
	else if (removed)
		plog("ssh", "known_hosts",
		     "removed %d host key%s of pods that are gone (%s%s) "
		     "from %s",
		     removed, removed == 1 ? "" : "s", gone.data,
		     gone.len >= 400 ? ", ..." : "", p->known_hosts);
	buf_free(&keep);
	buf_free(&gone);
}

void ssh_pool_prune(struct ssh_pool *p,
		    bool (*listed)(void *arg, const char *pod_key), void *arg)
{
	pthread_mutex_lock(&p->lock);
	for (struct sess *s = p->live, *next; s; s = next) {
		next = s->next;
		if (!listed(arg, s->key))
			retire(p, s);
	}
	struct sess *done = reap(p, false);
	pthread_mutex_unlock(&p->lock);
	free_list(done);
	kh_prune(p, listed, arg);
}

void ssh_pool_free(struct ssh_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	while (p->live)
		retire(p, p->live);
	struct sess *all = reap(p, true);
	pthread_mutex_unlock(&p->lock);
	free_list(all);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->kh_lock);
	free(p->known_hosts);
	free(p->key_path);
	free(p);
	pthread_mutex_lock(&init_lock);
	if (--init_count == 0)
		libssh2_exit();
	pthread_mutex_unlock(&init_lock);
}
