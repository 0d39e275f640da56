/* ssh_pool.c — the pool: one session per pod, started on demand; ssh_run()
 * queues a command on it and waits for its start (retrying once on a fresh
 * session when the old one died first); signalling a command's process
 * group (a kill command on the same session); forgetting and pruning pods; and
 * the connection string ("user@host -p port"). */
#include "ssh_int.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

#define DEFAULT_TIMEOUT	  10.0
#define DEFAULT_KEEPALIVE 15.0

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
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
	sess_wake(s);
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

/* A new session for the pod, its thread started with c already queued, or
 * serving f (a thread that fails at once must find them to fail them). */
static struct sess *sess_start(struct ssh_pool *p, const char *key,
			       const char *conn, char *user, char *host,
			       int port, struct ssh_cmd *c, struct sftp *f)
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
	if (c) {
		c->next = NULL;
		s->q_head = s->q_tail = c;
	}
	if (f)
		sftp_take(f, s);
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
		if (f)
			sftp_sess_end(s, false, true, -EIO);
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
			sess_wake(s);
			free(user);
			free(host);
		} else {
			retire(p, s); /* dead, or the pod moved */
		}
	}
	if (!queued) {
		s = sess_start(p, key, conn, user, host, port, c, NULL);
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

int pool_sftp_attach(struct ssh_pool *p, const char *key, const char *conn,
		     struct sftp *f)
{
	char *user, *host;
	int port;
	if (parse_conn(conn, &user, &host, &port)) {
		plog("sftp", key, "cannot parse the ssh connection \"%s\"",
		     conn ? conn : "");
		return -EIO;
	}
	if (!kh_name_ok(key)) {
		plog("sftp", key,
		     "a pod id unfit as a known_hosts name; refusing");
		free(user);
		free(host);
		return -EIO;
	}
	pthread_mutex_lock(&p->lock);
	struct sess *done = reap(p, false);
	struct sess *s = p->live;
	while (s && strcmp(s->key, key))
		s = s->next;
	int rc = -EAGAIN;
	bool start = !s, other = false;
	if (s) {
		pthread_mutex_lock(&s->lock);
		bool usable = !s->dead && !strcmp(s->conn, conn);
		if (usable && s->sftp == f) {
			rc = 0;
		} else if (usable && !s->sftp && sftp_takeable(f, s)) {
			sftp_take(f, s);
			rc = 0;
		}
		other = usable && s->sftp && s->sftp != f;
		pthread_mutex_unlock(&s->lock);
		if (rc == 0)
			sess_wake(s);
		else if (!usable) {
			retire(p, s); /* dead, or the pod moved */
			start = true;
		}
	}
	if (start && sftp_takeable(f, NULL)) {
		s = sess_start(p, key, conn, user, host, port, NULL, f);
		rc = s ? 0 : -EIO;
		if (s)
			user = host = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	free(user);
	free(host);
	free_list(done);
	if (other) {
		plog("sftp", key, "a second SFTP client for the pod; refused");
		rc = -EIO;
	}
	return rc;
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
	    const char *cmdline, int out_fd, bool (*interrupted)(void *arg),
	    void *arg, struct ssh_cmd **out)
{
	return ssh_run_script(p, pod_key, conn, cmdline, strlen(cmdline),
			      out_fd, interrupted, arg, out);
}

int ssh_run_script(struct ssh_pool *p, const char *pod_key, const char *conn,
		   const char *script, size_t len, int out_fd,
		   bool (*interrupted)(void *arg), void *arg,
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
		int fd = cmd_open_output(pod_key, out_fd);
		if (fd < 0)
			return -EIO;
		struct ssh_cmd *c = cmd_new(pod_key, conn, script, len, fd);
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

/* The names kill -l gives (POSIX and Linux), without SIG. */
static const char *const SIGNALS[] = {
    "HUP",   "INT",  "QUIT", "ILL",  "TRAP", "ABRT", "BUS",    "FPE",	 "KILL",
    "USR1",  "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD",	 "CONT",
    "STOP",  "TSTP", "TTIN", "TTOU", "URG",  "XCPU", "XFSZ",   "VTALRM", "PROF",
    "WINCH", "IO",   "POLL", "PWR",  "SYS",  "IOT"};

/* sig as a name of the table, upper case, without SIG, or as a number
 * kill -l knows on Linux (1-31, and 34-64, the real-time ones: 32 and 33
 * are the C library's own), given on as it is; false if neither. Case and
 * a trailing newline (echo TERM > signal) are forgiven. */
static bool signal_name(const char *sig, char out[8])
{
	size_t n = strlen(sig);
	while (n && (sig[n - 1] == '\n' || sig[n - 1] == ' ' ||
		     sig[n - 1] == '\t' || sig[n - 1] == '\r'))
		n--;
	if (n && n <= 2 && isdigit((unsigned char)sig[0]) &&
	    isdigit((unsigned char)sig[n - 1])) {
		int v = n == 1 ? sig[0] - '0'
			       : (sig[0] - '0') * 10 + (sig[1] - '0');
		if (sig[0] == '0' || v > 64 || v == 32 || v == 33)
			return false;
		snprintf(out, 8, "%d", v);
		return true;
	}
	if (n > 3 && !strncasecmp(sig, "SIG", 3)) {
		sig += 3;
		n -= 3;
	}
	if (!n || n > 7)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)toupper((unsigned char)sig[i]);
	out[n] = 0;
	for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
		if (!strcmp(out, SIGNALS[i]))
			return true;
	return false;
}

int ssh_cmd_signal(struct ssh_pool *p, struct ssh_cmd *c, const char *sig,
		   bool (*interrupted)(void *arg), void *arg)
{
	char name[8];
	if (!sig || !signal_name(sig, name))
		return -EINVAL;
	/* A job just started may be running before its wrapper's pid line
	 * has been read (a busy machine): the signal waits for it rather
	 * than being lost (an rmdir'ed job would run on, forgotten). */
	long pgid = ssh_cmd_wait_pgid(c, p->timeout, interrupted, arg);
	if (pgid <= 0)
		return pgid == -EINTR ? -EINTR : -ESRCH;
	/* Through sh, whatever the user's shell is (csh's kill knows no
	 * "--"); kill -s takes a number too (dash, bash, busybox). */
	char script[96];
	snprintf(script, sizeof script,
		 "exec sh -c \"kill -s %s -- -%ld\" 2>&1", name, pgid);
	struct ssh_cmd *k = NULL;
	int rc = ssh_run(p, c->pod_key, c->conn, script, -1, NULL, NULL, &k);
	if (rc)
		return rc;
	int done = ssh_cmd_wait_done(k, p->timeout, interrupted, arg);
	if (done <= 0) {
		if (done == -EINTR)
			plog("ssh", c->pod_key,
			     "kill -s %s of process group %ld sent; "
			     "interrupted before it ended",
			     name, pgid);
		else
			plog("ssh", c->pod_key,
			     "kill -s %s of process group %ld did not end "
			     "within %gs",
			     name, pgid, p->timeout);
		ssh_cmd_put(k);
		return done == -EINTR ? -EINTR : -EIO;
	}
	struct buf ex;
	buf_init(&ex);
	ssh_cmd_exit_text(k, &ex);
	if (strcmp(ex.data, "0\n")) {
		char tmp[512];
		struct ssh_cursor cur = {0, false};
		bool eof;
		size_t n = ssh_cmd_read(k, &cur, tmp, sizeof tmp - 1, &eof);
		while (n && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r'))
			n--;
		tmp[n] = 0;
		if (strstr(tmp, "No such process"))
			rc = -ESRCH;
		else if (strstr(tmp, "not permitted"))
			rc = -EPERM;
		else
			rc = -EIO;
		if (rc != -ESRCH)
			plog("ssh", c->pod_key,
			     "kill -s %s of process group %ld failed (exit "
			     "%.*s): %s",
			     name, pgid, (int)strcspn(ex.data, "\n"), ex.data,
			     tmp);
	}
	buf_free(&ex);
	ssh_cmd_put(k);
	return rc;
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
