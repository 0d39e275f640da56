/* sftp_chan.c — the SFTP channel of a pod's session and the requests'
 * road to it: callers queue requests and wait (sreq_*); the session's I/O
 * thread (sftp_step, called from its loop beside the commands' channels)
 * opens the channel when requests wait, says INIT and reads VERSION, then
 * writes queued requests and hands each reply to the request of its id;
 * when the session or the SFTP server ends, requests in flight end as lost
 * (sftp_sess_end). See sftp_int.h for the why and the locks. */
#include "sftp_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The receive window we grant the SFTP server: enough for every file's
 * read-ahead at a real round-trip time (a 2 MiB window held a cat channel
 * to 33 MB/s at 50 ms, 16 MiB gave 83). */
#define CHAN_WINDOW (16u << 20)
#define CHAN_PACKET 32768
/* The largest reply taken (OpenSSH's sftp-server sends at most 256 KiB). */
#define MAX_REPLY (512u << 10)
#define RX_SIZE	  (MAX_REPLY + (64u << 10))
/* Bytes read per round before the commands get theirs. */
#define ROUND_BUDGET ((size_t)4 << 20)

enum chst {
	CH_NONE,
	CH_OPENING,
	CH_STARTUP, /* the subsystem request */
	CH_INIT,    /* INIT going out */
	CH_VERSION, /* waiting for VERSION */
	CH_READY,
	CH_FREEING,
};

struct sftp_chan {
	enum chst st;
	LIBSSH2_CHANNEL *ch;
	double deadline;
	uint8_t init[9];
	size_t init_off;
	struct sreq *cur; /* being written */
	char *rx;	  /* replies read, not yet whole */
	size_t rxlen;
	/* A big reply (a READ's data) read straight into its own buffer,
	 * past rx: no copy out of rx, no move of what follows it. */
	char *body;
	size_t body_len, body_have;
	uint8_t body_type;
	uint32_t body_id;
	unsigned gen;
};

/* Replies at least this big are read into their own buffer. */
#define DIRECT_MIN ((size_t)16 << 10)

/* ---- requests: the callers' side ---- */

uint32_t sreq_begin(struct sftp *f, struct buf *b, uint8_t type)
{
	buf_init(b);
	uint32_t id = atomic_fetch_add(&f->next_id, 1);
	sftp_begin(b, type, id, true);
	return id;
}

uint32_t sreq_begin_ext(struct sftp *f, struct buf *b, const char *name)
{
	uint32_t id = sreq_begin(f, b, SSH_FXP_EXTENDED);
	sftp_put_cstr(b, name);
	return id;
}

struct sreq *sreq_make(struct buf *b, uint32_t id, unsigned gen)
{
	sftp_end(b, 0);
	struct sreq *r = xcalloc(1, sizeof *r);
	r->id = id;
	r->gen = gen;
	r->len = b->len;
	r->pkt = buf_steal(b);
	return r;
}

void sreq_free(struct sreq *r)
{
	if (!r)
		return;
	free(r->pkt);
	free(r->reply);
	free(r->path);
	free(r);
}

void sreq_submit(struct sftp *f, struct sreq *r)
{
	r->next = NULL;
	if (f->q_tail)
		f->q_tail->next = r;
	else
		f->q_head = r;
	f->q_tail = r;
	if (f->owner)
		sess_wake(f->owner);
}

static bool unqueue(struct sftp *f, struct sreq *r)
{
	struct sreq *prev = NULL;
	for (struct sreq *q = f->q_head; q; prev = q, q = q->next)
		if (q == r) {
			if (prev)
				prev->next = r->next;
			else
				f->q_head = r->next;
			if (f->q_tail == r)
				f->q_tail = prev;
			return true;
		}
	return false;
}

void sreq_abandon(struct sftp *f, struct sreq *r)
{
	if (!r)
		return;
	if (r->done || (!r->sent && unqueue(f, r)))
		sreq_free(r);
	else
		r->abandoned = true;
}

/* A guard against a bug turning into a hung process: the session ends
 * a pod that stops answering long before (see DEAD_AFTER). */
static double wait_limit(const struct ssh_pool *p)
{
	return 4 * p->keepalive + 3 * p->timeout + 60;
}

double sreq_wait_limit(const struct sftp *f)
{
	return wait_limit(f->pool);
}

static _Thread_local bool (*intr_fn)(void *);
static _Thread_local void *intr_arg;

void sftp_set_interrupt(bool (*interrupted)(void *arg), void *arg)
{
	intr_fn = interrupted;
	intr_arg = arg;
}

bool sftp_interrupted(void)
{
	return intr_fn && intr_fn(intr_arg);
}

int sreq_wait(struct sftp *f, struct sreq *r)
{
	double end = now_monotonic() + wait_limit(f->pool);
	while (!r->done) {
		double pause = 0.1;
		if (!f->owner && !r->sent) {
			if (f->closing) {
				r->done = true;
				r->err = -ENOTCONN;
				break;
			}
			pthread_mutex_unlock(&f->lock);
			int rc = pool_sftp_attach(f->pool, f->key, f->conn, f);
			pthread_mutex_lock(&f->lock);
			if (r->done)
				break;
			if (rc == -EIO) {
				sreq_abandon(f, r);
				return -EIO;
			}
			if (rc == -EAGAIN)
				pause = 0.01; /* the old session is ending */
		}
		if (sftp_interrupted()) {
			sreq_abandon(f, r);
			return -EINTR;
		}
		double now = now_monotonic();
		if (now >= end) {
			sreq_abandon(f, r);
			pthread_mutex_unlock(&f->lock);
			plog("sftp", f->key,
			     "no answer within %.0fs; giving up",
			     wait_limit(f->pool));
			pthread_mutex_lock(&f->lock);
			return -EIO;
		}
		if (end - now < pause)
			pause = end - now;
		struct timespec ts;
		monotonic_abs(&ts, pause);
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	return 0;
}

void sftp_unref_unlock(struct sftp *f)
{
	bool last = --f->refs == 0;
	pthread_mutex_unlock(&f->lock);
	if (!last)
		return;
	while (f->q_head) { /* sent-and-forgotten ones no session took */
		struct sreq *r = f->q_head;
		f->q_head = r->next;
		sreq_free(r);
	}
	sftp_cache_free(f);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f->key);
	free(f->conn);
	free(f);
}

/* ---- the I/O thread's side ---- */

static void pend_add(struct sftp *f, struct sreq *r)
{
	struct sreq **b = &f->pend[r->id % PEND_BUCKETS];
	r->next = *b;
	*b = r;
	f->n_pend++;
}

static struct sreq *pend_take(struct sftp *f, uint32_t id)
{
	for (struct sreq **pp = &f->pend[id % PEND_BUCKETS]; *pp;
	     pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct sreq *r = *pp;
			*pp = r->next;
			f->n_pend--;
			return r;
		}
	return NULL;
}

/* r ends with err (0: its reply is here); freed if its caller let go. */
static void finish(struct sftp *f, struct sreq *r, int err)
{
	r->done = true;
	r->err = err;
	if (r->on_done)
		r->on_done(f, r);
	else if (r->abandoned)
		sreq_free(r);
}

/* Every request in flight ends as lost (the channel or session went). */
static void fail_pending(struct sftp *f, int err)
{
	for (int i = 0; i < PEND_BUCKETS; i++)
		while (f->pend[i]) {
			struct sreq *r = f->pend[i];
			f->pend[i] = r->next;
			finish(f, r, err);
		}
	f->n_pend = 0;
}

static void fail_queued(struct sftp *f, int err)
{
	while (f->q_head) {
		struct sreq *r = f->q_head;
		f->q_head = r->next;
		finish(f, r, err);
	}
	f->q_tail = NULL;
}

static struct sftp *served(struct sess *s)
{
	pthread_mutex_lock(&s->lock);
	struct sftp *f = s->sftp;
	pthread_mutex_unlock(&s->lock);
	return f;
}

bool sftp_io(struct sess *s)
{
	return s->sch && s->sch->st != CH_NONE;
}

bool sftp_opening(struct sess *s)
{
	return s->sch && s->sch->st == CH_OPENING;
}

bool sftp_waiting(struct sess *s)
{
	struct sftp *f = served(s);
	if (!f)
		return false;
	pthread_mutex_lock(&f->lock);
	bool w = f->n_pend || f->q_head;
	pthread_mutex_unlock(&f->lock);
	return w;
}

bool sftp_takeable(struct sftp *f, struct sess *s)
{
	pthread_mutex_lock(&f->lock);
	bool ok = !f->closing && (!f->owner || f->owner == s);
	pthread_mutex_unlock(&f->lock);
	return ok;
}

void sftp_take(struct sftp *f, struct sess *s)
{
	pthread_mutex_lock(&f->lock);
	f->owner = s;
	f->refs++;
	pthread_mutex_unlock(&f->lock);
	s->sftp = f;
}

static void body_drop(struct sftp_chan *c)
{
	free(c->body);
	c->body = NULL;
	c->body_len = c->body_have = 0;
}

/* The channel is gone (the SFTP server ended, or sshd refused it): what
 * was in flight is lost; the next request opens a new one. */
static void chan_down(struct sess *s, struct sftp *f, int err)
{
	struct sftp_chan *c = s->sch;
	pthread_mutex_lock(&f->lock);
	fail_pending(f, SREQ_LOST);
	if (err)
		fail_queued(f, err);
	f->ready = false;
	sftp_cache_clear(f);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	c->cur = NULL;
	c->rxlen = 0;
	body_drop(c);
	c->st = c->ch ? CH_FREEING : CH_NONE;
}

static bool other_opening(struct sess *s)
{
	for (struct ssh_cmd *c = s->cmds; c; c = c->next)
		if (c->st == C_OPENING)
			return true;
	return false;
}

/* VERSION: the extensions the server has. */
static void parse_version(struct sftp *f, const char *p, size_t n)
{
	struct sftp_dec d;
	sftp_dec_init(&d, p, n);
	uint32_t ver = 0;
	sftp_get_u32(&d, &ver);
	pthread_mutex_lock(&f->lock);
	while (!d.bad && d.left) {
		const char *name, *data;
		size_t nl, dl;
		if (!sftp_get_str(&d, &name, &nl) ||
		    !sftp_get_str(&d, &data, &dl))
			break;
#define IS(x) (nl == sizeof x - 1 && !memcmp(name, x, nl))
		if (IS("posix-rename@openssh.com"))
			f->x_posix_rename = true;
		else if (IS("statvfs@openssh.com"))
			f->x_statvfs = true;
		else if (IS("hardlink@openssh.com"))
			f->x_hardlink = true;
		else if (IS("fsync@openssh.com"))
			f->x_fsync = true;
		else if (IS("lsetstat@openssh.com"))
			f->x_lsetstat = true;
#undef IS
	}
	pthread_mutex_unlock(&f->lock);
}

/* Hands a reply (payload: after type and id; owned) to the request of its
 * id, if one waits; true if one did. */
static bool deliver(struct sftp *f, uint8_t type, uint32_t id, char *payload,
		    size_t len)
{
	pthread_mutex_lock(&f->lock);
	struct sreq *r = pend_take(f, id);
	if (r) {
		r->type = type;
		r->reply = payload;
		r->rlen = len;
		payload = NULL;
		if (type == SSH_FXP_STATUS) {
			struct sftp_dec sd;
			sftp_dec_init(&sd, r->reply, r->rlen);
			if (!sftp_get_u32(&sd, &r->status))
				r->status = SSH_FX_BAD_MESSAGE;
		}
		finish(f, r, 0);
	}
	pthread_mutex_unlock(&f->lock);
	free(payload);
	return r != NULL;
}

/* Hands every whole reply in c->rx to its request (each copied out
 * before f->lock is taken); a big one not yet whole becomes c->body, its
 * bytes so far moved there. */
static void dispatch(struct sess *s, struct sftp *f, bool *bad)
{
	struct sftp_chan *c = s->sch;
	size_t at = 0, total = 0;
	int fr;
	bool any = false;
	while ((fr = sftp_frame(c->rx + at, c->rxlen - at, MAX_REPLY,
				&total)) == 1) {
		struct sftp_dec d;
		sftp_dec_init(&d, c->rx + at + 4, total - 4);
		uint8_t type;
		uint32_t id;
		if (!sftp_reply_head(&d, &type, &id)) {
			*bad = true;
			break;
		}
		at += total;
		if (type == SSH_FXP_VERSION) {
			if (c->st != CH_VERSION)
				continue;
			parse_version(f, (const char *)d.p, d.left);
			pthread_mutex_lock(&f->lock);
			c->gen = ++f->gen;
			f->ready = true;
			sftp_cache_clear(f);
			pthread_mutex_unlock(&f->lock);
			c->st = CH_READY;
			continue;
		}
		char *copy = NULL;
		if (d.left) {
			copy = xmalloc(d.left);
			memcpy(copy, d.p, d.left);
		}
		any |= deliver(f, type, id, copy, d.left);
	}
	if (fr < 0)
		*bad = true;
	/* A big reply begun: the rest goes straight to its buffer. Its head
	 * (length, type, id) must be here; a VERSION is never big. */
	const size_t head = 4 + 1 + 4;
	if (fr == 0 && c->st == CH_READY && total >= DIRECT_MIN &&
	    c->rxlen - at >= head) {
		struct sftp_dec d;
		sftp_dec_init(&d, c->rx + at + 4, head - 4);
		uint8_t type;
		uint32_t id;
		if (!sftp_reply_head(&d, &type, &id) ||
		    type == SSH_FXP_VERSION) {
			*bad = true;
		} else {
			c->body_type = type;
			c->body_id = id;
			c->body_len = total - head;
			c->body_have = c->rxlen - at - head;
			c->body = xmalloc(c->body_len);
			memcpy(c->body, c->rx + at + head, c->body_have);
			at = c->rxlen;
		}
	}
	if (any)
		pthread_cond_broadcast(&f->cond);
	if (at) {
		memmove(c->rx, c->rx + at, c->rxlen - at);
		c->rxlen -= at;
	}
}

/* Reads into c->body; hands it over once whole. As libssh2_channel_read. */
static ssize_t body_read(struct sftp *f, struct sftp_chan *c)
{
	ssize_t n = libssh2_channel_read(c->ch, c->body + c->body_have,
					 c->body_len - c->body_have);
	if (n <= 0)
		return n;
	c->body_have += (size_t)n;
	if (c->body_have == c->body_len) {
		char *b = c->body;
		c->body = NULL;
		if (deliver(f, c->body_type, c->body_id, b, c->body_len))
			pthread_cond_broadcast(&f->cond);
		c->body_len = c->body_have = 0;
	}
	return n;
}

/* Writes queued requests until the channel would block. -1: session
 * failed; 1: channel failed. */
static int write_some(struct sess *s, struct sftp *f, bool *progress)
{
	struct sftp_chan *c = s->sch;
	for (;;) {
		if (!c->cur) {
			pthread_mutex_lock(&f->lock);
			struct sreq *r;
			while ((r = f->q_head)) {
				f->q_head = r->next;
				if (!f->q_head)
					f->q_tail = NULL;
				if (!r->gen || r->gen == c->gen)
					break;
				finish(f, r,
				       SREQ_LOST); /* its handle is gone */
				pthread_cond_broadcast(&f->cond);
			}
			if (r) {
				r->sent = true;
				r->sent_gen = c->gen;
				pend_add(f, r);
			}
			pthread_mutex_unlock(&f->lock);
			if (!r)
				return 0;
			c->cur = r;
		}
		struct sreq *r = c->cur;
		ssize_t n = libssh2_channel_write(c->ch, r->pkt + r->off,
						  r->len - r->off);
		if (n == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (n < 0)
			return sess_channel_error((int)n) ? 1 : -1;
		*progress = true;
		r->off += (size_t)n;
		if (r->off == r->len) {
			/* Only the thread touches pkt once queued; r itself may
			 * be freed by the reply's dispatch from now on. */
			c->cur = NULL;
		}
	}
}

static int read_some(struct sess *s, struct sftp *f, bool *progress)
{
	struct sftp_chan *c = s->sch;
	size_t budget = ROUND_BUDGET;
	while (budget) {
		bool direct = c->body != NULL;
		ssize_t n = direct
				? body_read(f, c)
				: libssh2_channel_read(c->ch, c->rx + c->rxlen,
						       RX_SIZE - c->rxlen);
		if (n == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (n < 0)
			return sess_channel_error((int)n) ? 1 : -1;
		if (n == 0)
			return libssh2_channel_eof(c->ch) ? 1 : 0;
		*progress = true;
		budget -= min_sz(budget, (size_t)n);
		if (direct)
			continue;
		c->rxlen += (size_t)n;
		bool bad = false;
		dispatch(s, f, &bad);
		if (bad) {
			plog("sftp", s->key,
			     "the SFTP server sent a malformed packet; "
			     "closing its channel");
			return 1;
		}
	}
	return 0;
}

static void detach(struct sess *s, struct sftp *f)
{
	pthread_mutex_lock(&s->lock);
	s->sftp = NULL;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&f->lock);
	fail_pending(f, -ENOTCONN);
	fail_queued(f, -ENOTCONN);
	f->owner = NULL;
	f->ready = false;
	pthread_cond_broadcast(&f->cond);
	sftp_unref_unlock(f);
}

int sftp_step(struct sess *s, bool *progress, char *why, size_t wn)
{
	struct sftp *f = served(s);
	if (!f)
		return 0;
	if (!s->sch) {
		s->sch = xcalloc(1, sizeof *s->sch);
		s->sch->rx = xmalloc(RX_SIZE);
	}
	struct sftp_chan *c = s->sch;
	pthread_mutex_lock(&f->lock);
	bool want = f->q_head != NULL;
	bool closing = f->closing;
	pthread_mutex_unlock(&f->lock);
	if (closing && c->st == CH_NONE) {
		detach(s, f);
		*progress = true;
		return 0;
	}
	if (closing && c->st != CH_OPENING && c->st != CH_FREEING && !c->cur) {
		c->st = c->ch ? CH_FREEING : CH_NONE;
		*progress = true;
	}
	const struct ssh_pool *p = s->pool;
	int r;
	switch (c->st) {
	case CH_NONE:
		if (!want || other_opening(s))
			return 0;
		c->st = CH_OPENING;
		c->deadline = now_monotonic() + p->timeout;
		*progress = true;
		/* fall through */
	case CH_OPENING:
		c->ch = libssh2_channel_open_ex(
		    s->ss, "session", 7, CHAN_WINDOW, CHAN_PACKET, NULL, 0);
		if (!c->ch) {
			r = libssh2_session_last_errno(s->ss);
			if (r == LIBSSH2_ERROR_EAGAIN &&
			    now_monotonic() < c->deadline)
				return 0;
			if (r == LIBSSH2_ERROR_EAGAIN ||
			    !sess_channel_error(r)) {
				snprintf(why, wn, "SFTP channel open: %s",
					 r == LIBSSH2_ERROR_EAGAIN
					     ? "no answer"
					     : sess_last_error(s));
				return -1;
			}
			plog("sftp", s->key, "sshd refused a channel: %s",
			     sess_last_error(s));
			chan_down(s, f, -EIO);
			return 0;
		}
		c->st = CH_STARTUP;
		c->deadline = now_monotonic() + p->timeout;
		*progress = true;
		/* fall through */
	case CH_STARTUP:
		r = libssh2_channel_process_startup(c->ch, "subsystem", 9,
						    "sftp", 4);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return 0;
		*progress = true;
		if (r) {
			if (!sess_channel_error(r)) {
				snprintf(why, wn, "SFTP subsystem request: %s",
					 sess_last_error(s));
				return -1;
			}
			plog("sftp", s->key,
			     "sshd refused the sftp subsystem (no Subsystem "
			     "sftp line in its sshd_config?): %s",
			     sess_last_error(s));
			chan_down(s, f, -ENOTSUP);
			return 0;
		}
		{
			struct buf b;
			buf_init(&b);
			sftp_begin(&b, SSH_FXP_INIT, 0, false);
			sftp_put_u32(&b, 3);
			sftp_end(&b, 0);
			memcpy(c->init, b.data, sizeof c->init);
			buf_free(&b);
		}
		c->init_off = 0;
		c->rxlen = 0;
		c->st = CH_INIT;
		/* fall through */
	case CH_INIT:
		while (c->init_off < sizeof c->init) {
			ssize_t n = libssh2_channel_write(
			    c->ch, (char *)c->init + c->init_off,
			    sizeof c->init - c->init_off);
			if (n == LIBSSH2_ERROR_EAGAIN)
				return 0;
			if (n < 0) {
				if (!sess_channel_error((int)n)) {
					snprintf(why, wn, "SFTP init: %s",
						 sess_last_error(s));
					return -1;
				}
				chan_down(s, f, -EIO);
				return 0;
			}
			c->init_off += (size_t)n;
		}
		*progress = true;
		c->st = CH_VERSION;
		/* fall through */
	case CH_VERSION:
	case CH_READY: {
		int w = c->st == CH_READY ? write_some(s, f, progress) : 0;
		/* A packet half sent must be finished before libssh2 sends
		 * anything else, and a read may send a window adjust: read
		 * once it went (sshd reads on meanwhile). */
		bool half = c->cur && (libssh2_session_block_directions(s->ss) &
				       LIBSSH2_SESSION_BLOCK_OUTBOUND);
		int rd = w ? w : half ? 0 : read_some(s, f, progress);
		if (!rd && c->st == CH_READY && !c->cur)
			w = write_some(s, f,
				       progress); /* what came meanwhile */
		if (rd < 0 || w < 0) {
			snprintf(why, wn, "SFTP channel: %s",
				 sess_last_error(s));
			return -1;
		}
		if (rd > 0 || w > 0) {
			if (!closing)
				plog("sftp", s->key,
				     "the SFTP server's channel closed");
			chan_down(s, f, c->st == CH_READY ? 0 : -EIO);
			*progress = true;
		}
		return 0;
	}
	case CH_FREEING:
		r = libssh2_channel_free(c->ch);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return 0;
		c->ch = NULL;
		c->st = CH_NONE;
		*progress = true;
		return 0;
	}
	return 0;
}

void sftp_sess_end(struct sess *s, bool was_up, bool stopping, int code)
{
	if (s->sch) {
		/* The channel goes with the libssh2 session. */
		body_drop(s->sch);
		free(s->sch->rx);
		free(s->sch);
		s->sch = NULL;
	}
	pthread_mutex_lock(&s->lock);
	struct sftp *f = s->sftp;
	s->sftp = NULL;
	pthread_mutex_unlock(&s->lock);
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	fail_pending(f, SREQ_LOST);
	if (!was_up)
		fail_queued(f, code ? code : -EHOSTUNREACH);
	else if (stopping)
		fail_queued(f, -ENOTCONN);
	/* else they wait for the next session, which their callers start */
	f->owner = NULL;
	f->ready = false;
	sftp_cache_clear(f);
	pthread_cond_broadcast(&f->cond);
	sftp_unref_unlock(f);
}
