/* ssh_session.c — one pod's session, run by its I/O thread: open it
 * (connect, handshake, host key, authentication), then step every command's
 * channel through its states (open, exec, read, close, free) in one poll()
 * loop with keepalives, and, when the session ends, end or hand back every
 * command it held. See ssh_int.h for the threads, locks and failures. */
#include "ssh_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* One libssh2_channel_read() at most, then one write() to the command's
 * file: few system calls per megabyte. */
#define READ_CHUNK (256 * 1024)
/* Bytes one command may take per loop round before the others get theirs. */
#define ROUND_BUDGET ((size_t)4 << 20)
/* The receive window we grant sshd per channel: what it may send before
 * it waits for our window adjust, so a channel's throughput is at most the
 * window per round trip. Measured (bench/ssh_run.py, test_ssh throughput,
 * 2 busy cores): at 50 ms, 2 MiB gave 32 MiB/s, 16 MiB 70-100; at 0 ms,
 * a window over 2 MiB cost a third of the median throughput (libssh2 1.10
 * keeps every packet of the window queued until it is read, and the data
 * no longer fits in the cache). So: a round trip's worth at WINDOW_RATE,
 * between 2 and 16 MiB, the round trip being the session's quickest
 * channel open so far (before the first, the largest: a pod is usually
 * far). */
#define WINDOW_MIN  LIBSSH2_CHANNEL_WINDOW_DEFAULT
#define WINDOW_MAX  (16u << 20)
#define WINDOW_RATE (320.0 * (1 << 20)) /* bytes per second */

/* A session whose pod sent nothing for this many keepalive intervals while
 * commands run is dead. */
#define DEAD_AFTER 3
/* Keepalive replies a session may pile up in libssh2 before it is renewed
 * (some 100 bytes each, walked by every channel read). */
#define MAX_PROBES 256

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
	int rc = sess_connect(s, now_monotonic() + p->timeout);
	if (rc)
		return rc;
	s->ss = sess_lib_init(s);
	if (!s->ss) {
		plog("ssh", s->key, "libssh2_session_init failed");
		return -EIO;
	}
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
		int w = sess_sock_wait(s, sess_lib_events(s), deadline);
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
		     s->port, sess_last_error(s),
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
	rc = kh_check_host_key(s, k);
	libssh2_knownhost_free(k);
	if (rc)
		return rc;
	rc = sess_authenticate(s);
	if (rc == 0)
		stats_count(ST_SSH_SESSIONS);
	return rc;
}

static unsigned channel_window(const struct sess *s)
{
	double w = s->rtt > 0 ? s->rtt * WINDOW_RATE : WINDOW_MAX;
	return w <= WINDOW_MIN	 ? WINDOW_MIN
	       : w >= WINDOW_MAX ? WINDOW_MAX
				 : (unsigned)w;
}

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
	snprintf(f->why, sizeof f->why, "%s: %s", what, sess_last_error(s));
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
		    s->ss, "session", 7, channel_window(s),
		    LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
		if (c->ch) {
			double t = now_monotonic() - c->open_t0;
			if (s->rtt <= 0 || t < s->rtt)
				s->rtt = t;
			/* stderr is read apart: the wrapper's pid line comes
			 * there (the script's stderr is merged into stdout on
			 * the pod). (NORMAL never blocks.) */
			libssh2_channel_handle_extended_data2(
			    c->ch, LIBSSH2_CHANNEL_EXTENDED_DATA_NORMAL);
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
			     sess_last_error(s),
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
			c->st = C_STDIN;
			stats_count(ST_SSH_COMMANDS);
			return true;
		}
		if (channel_error(r)) {
			plog("ssh", s->key,
			     "sshd refused to run the command: %s",
			     sess_last_error(s));
			c->st = C_FREEING;
			cmd_started(c, -EIO);
			return true;
		}
		set_fail(s, f, c, -EIO,
			 "connection lost while starting the command (it may "
			 "have run)");
		return false;
	case C_STDIN:
		/* The script to the wrapper's stdin, then EOF; it runs only if
		 * every byte came. The start is reported once it all went. */
		while (c->input_off < c->input_len) {
			ssize_t n = libssh2_channel_write(
			    c->ch, c->input + c->input_off,
			    c->input_len - c->input_off);
			if (n == LIBSSH2_ERROR_EAGAIN)
				return true;
			if (n < 0) {
				if (!channel_error((int)n)) {
					set_fail(
					    s, f, c, -EIO,
					    "connection lost while sending "
					    "the script (it did not run)");
					return false;
				}
				/* The wrapper ended early: its output and
				 * status say why. */
				c->input_off = c->input_len;
				break;
			}
			c->input_off += (size_t)n;
			*progress = true;
		}
		r = libssh2_channel_send_eof(c->ch);
		if (r == LIBSSH2_ERROR_EAGAIN)
			return true;
		if (r && !channel_error(r)) {
			set_fail(s, f, c, -EIO,
				 "connection lost while sending the script (it "
				 "did not run)");
			return false;
		}
		free(c->input);
		c->input = NULL;
		c->st = C_RUNNING;
		*progress = true;
		cmd_started(c, 0);
		return true;
	case C_RUNNING: {
		bool zero[2] = {false, false};
		size_t budget = ROUND_BUDGET;
		bool any = true;
		while (any && budget) {
			any = false;
			/* stdout, the output; stderr, the wrapper's pid line
			 * (see cmd_stderr). Both in one loop: reading one to
			 * its end first would stall once the other fills the
			 * channel window. */
			for (int stream = 0; stream < 2; stream++) {
				ssize_t n = libssh2_channel_read_ex(
				    c->ch,
				    stream ? SSH_EXTENDED_DATA_STDERR : 0,
				    s->rbuf, READ_CHUNK);
				if (n > 0 && stream)
					cmd_stderr(c, s->rbuf, (size_t)n,
						   false);
				else if (n > 0)
					cmd_output(c, s->rbuf, (size_t)n);
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
	if (!opening && !sftp_opening(s))
		for (struct ssh_cmd *c = s->cmds; c; c = c->next)
			if (c->st == C_QUEUED) {
				c->st = C_OPENING;
				c->open_t0 = now_monotonic();
				c->deadline = c->open_t0 + s->pool->timeout;
				break;
			}
	/* A packet libssh2 could only half send must be finished by the
	 * call that started it: another call would flush it and believe its
	 * own packet went out. So while one is pending, only its owner
	 * runs. */
	for (struct ssh_cmd *c = s->cmds; c; c = c->next) {
		if ((s->out_owner && s->out_owner != c) || s->sftp_out)
			continue;
		/* Only steps that call libssh2 and may send can own a
		 * half-sent packet (the bit below is the last call's). */
		bool sends = c->st == C_OPENING || c->st == C_EXEC ||
			     c->st == C_STDIN || c->st == C_RUNNING ||
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
	/* The SFTP channel (sftp.c), under the same rule. */
	if (!s->out_owner) {
		char why[200];
		if (sftp_step(s, progress, why, sizeof why)) {
			f->code = 0;
			f->who = NULL;
			snprintf(f->why, sizeof f->why, "%s", why);
			return false;
		}
		s->sftp_out =
		    sftp_io(s) && (libssh2_session_block_directions(s->ss) &
				   LIBSSH2_SESSION_BLOCK_OUTBOUND);
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
		bool active = s->cmds || sftp_waiting(s);
		if (active || sftp_io(s))
			s->idle_unread = false;
		if (!active) {
			sess_cache_release(s);
			s->heard = now; /* nobody reads: silence says nothing */
			if (s->probes >= MAX_PROBES && !sftp_io(s)) {
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
		if (now >= next_ka && !s->out_owner && !s->sftp_out &&
		    writable(s->sock)) {
			bool probe =
			    active && now - s->heard >= p->keepalive / 2;
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
		if (active && s->heard + DEAD_AFTER * p->keepalive < until)
			until = s->heard + DEAD_AFTER * p->keepalive;
		for (struct ssh_cmd *c = s->cmds; c; c = c->next)
			if ((c->st == C_OPENING || c->st == C_EXEC) &&
			    c->deadline < until)
				until = c->deadline;
		short ev = 0;
		if (s->cmds || sftp_io(s) || !s->idle_unread)
			ev |= POLLIN;
		if (s->out_owner || s->sftp_out ||
		    (libssh2_session_block_directions(s->ss) &
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
			sess_drain_wake(s);
		if (r > 0 && pf[0].revents && !s->cmds && !sftp_io(s)) {
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

/* Ends everything the thread holds: running commands end as "lost",
 * commands not yet sent get f->code or a retry. */
static void sess_close(struct sess *s, bool was_up, bool stopping,
		       struct fail *f)
{
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
	sftp_sess_end(s, was_up, stopping, f->code);
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
		case C_STDIN: /* the wrapper runs nothing it did not get
				 whole */
			cmd_started(c, -EIO);
			if (c != f->who)
				plog("ssh", s->key,
				     "connection lost while sending a script "
				     "(it did not run)");
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
	sess_cache_release(s);
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
}

void *sess_main(void *arg)
{
	struct sess *s = arg;
	struct fail f = {0};
	s->rbuf = xmalloc(READ_CHUNK);
	int rc = sess_open(s);
	bool up = rc == 0;
	if (up)
		sess_loop(s, &f);
	else
		f.code = rc == -ECANCELED ? -EHOSTUNREACH : rc;
	/* From here the session takes nothing more — before any command
	 * hears its result: a command told to retry must find the session
	 * dead and get a new one (queued on this one, it would be told to
	 * retry a second time: "connection lost twice"). What was queued
	 * meanwhile gets the connect error, or is retried on a new session.
	 * Whether the pool stopped us is read first: a retry's submit()
	 * retires a dead session, which sets stop too. */
	bool stopping = atomic_load(&s->stop);
	pthread_mutex_lock(&s->lock);
	s->dead = true;
	struct ssh_cmd *q = s->q_head;
	s->q_head = s->q_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	sess_close(s, up, stopping, &f);
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
	free(s->rbuf);
	s->rbuf = NULL;
	pthread_mutex_lock(&s->lock);
	s->exited = true;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

bool sess_channel_error(int r)
{
	return channel_error(r);
}
