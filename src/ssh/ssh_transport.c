/* ssh_transport.c — what a session's I/O thread runs on beneath SSH: the
 * TCP connection, waiting on its socket (or the eventfd that wakes it, or a
 * stop request), libssh2's last error as text, and the libssh2 session
 * itself with its memory cache and counted reads. */
#include "ssh_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* libssh2's allocations carry their size and size class. */
#define MIN_CLASS 13 /* 8 KiB */
struct blk {
	union {
		struct {
			size_t size;
			int cls; /* -1: not cached */
		} h;
		max_align_t align;
	} u;
};

void sess_wake(struct sess *s)
{
	uint64_t one = 1;
	ssize_t r = write(s->wakefd, &one, sizeof one);
	(void)r; /* EAGAIN: the counter is already non-zero, it will wake */
}

void sess_drain_wake(struct sess *s)
{
	uint64_t v;
	ssize_t r = read(s->wakefd, &v, sizeof v);
	(void)r;
}

/* Waits for the socket (events), the deadline, or a stop request: 0,
 * -ETIMEDOUT or -ECANCELED. */
int sess_sock_wait(struct sess *s, short events, double deadline)
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
			sess_drain_wake(s);
		if (r > 0 && pf[0].revents)
			return 0;
	}
}

short sess_lib_events(struct sess *s)
{
	int d = libssh2_session_block_directions(s->ss);
	short ev = 0;
	if (d & LIBSSH2_SESSION_BLOCK_INBOUND)
		ev |= POLLIN;
	if (d & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		ev |= POLLOUT;
	return ev ? ev : POLLIN;
}

const char *sess_last_error(struct sess *s)
{
	char *msg = NULL;
	libssh2_session_last_error(s->ss, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

int sess_connect(struct sess *s, double deadline)
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
			int w = sess_sock_wait(s, POLLOUT, deadline);
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

void sess_cache_release(struct sess *s)
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

LIBSSH2_SESSION *sess_lib_init(struct sess *s)
{
	LIBSSH2_SESSION *ss =
	    libssh2_session_init_ex(ss_alloc, ss_free, ss_realloc, s);
	if (ss)
		libssh2_session_callback_set(ss, LIBSSH2_CALLBACK_RECV,
					     (void *)counting_recv);
	return ss;
}
