/* ssh_int.h — private to src/ssh_*.c: what the parts of the SSH runner
 * share (the command, session and pool structs, and each part's calls into
 * the others). ssh.h is the public interface. The parts:
 *   ssh_output.c     a command's output file, readers, wait/watch, exit,
 *                    the wrapper and its pid line
 *   ssh_transport.c  the TCP socket, waiting on it, libssh2's session setup
 *   ssh_knownhosts.c host keys per pod: learn, check, prune
 *   ssh_auth.c       agent and key file authentication
 *   ssh_session.c    one pod's I/O thread: open, channel states, loop, close
 *   ssh_pool.c       sessions per pod, ssh_run(), signals, forget/prune/free
 *   sftp_proto.c     SFTP v3 packets, pure encode/decode
 *   sftp_chan.c      the session's SFTP channel, which the I/O thread
 *                    pumps beside the commands' channels (sftp_step), and
 *                    the road of SFTP requests to it (see sftp_int.h)
 *   sftp.c           a pod's files over SFTP (sftp.h): path operations and
 *                    the one map of SFTP failures to errno
 *   sftp_file.c      open files: read ahead, write behind, reopen
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
 * a command's status and how much of its output file is written. Each is
 * held for memory work only, never across network or file I/O: readers
 * pread() the file while the thread reads the next packet. Order: pool,
 * then sess; cmd alone.
 *
 * Output. sshd runs the wrapper (ssh_output.c) that merges the script's
 * stderr into its stdout on the pod, so the channel's stdout is the
 * command's output in the order it was produced. The thread reads it into
 * the session's buffer and write()s it to the command's file at once: it
 * never stops reading a channel (there is no back-pressure to stall sshd),
 * and memory stays bounded whatever a command prints. A failed write
 * (disk full) is counted and the rest discarded, never waited on.
 * The channel's stderr carries only the wrapper's first line, its pid —
 * the job's process group id, which ssh_cmd_signal() kills through a
 * second command on the same session — and what the wrapper says when it
 * refuses a script.
 *
 * Failures. A session that dies ends its running commands as "lost"
 * (their output files get nothing more); commands queued on it that were never
 * sent are retried once on a fresh session, which is how the next ssh_run()
 * reconnects transparently. A pod that sends nothing for DEAD_AFTER
 * keepalive intervals while commands run is dead too (a frozen host keeps
 * the connection, and its kernel acknowledges our packets). A command
 * ssh_run() gave up on before its exec request went out is never sent
 * (ssh_cmd.req). */
#ifndef PRIMEFS_SSH_INT_H
#define PRIMEFS_SSH_INT_H

#include "ssh.h"

#include <errno.h>
#include <libssh2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "watchers.h"

/* Internal start result: the session died before the command was sent, so
 * ssh_run() may safely try again on a new session. */
#define RETRY_RC (-ECONNRESET)

enum cstate {
	C_QUEUED,  /* taken from the queue, waiting for its turn to open */
	C_OPENING, /* channel open sent (only one at a time: libssh2 keeps the
		      open state per session) */
	C_EXEC,	   /* exec request under way */
	C_STDIN,   /* the script going to the wrapper's stdin, then EOF */
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
	unsigned long long total; /* bytes written to fd so far */
	bool done, lost;
	int exit_status;
	char *exit_signal;
	struct watchers watchers;

	/* Set at creation, then read-only. */
	int fd;		      /* the output file (the command's own) */
	char *pod_key, *conn; /* where it runs (for ssh_cmd_signal) */

	long pgid; /* under lock: the wrapper's pid, 0 until known */

	/* The I/O thread's alone. */
	char err_line[128]; /* a partial line of the channel's stderr */
	size_t err_len;
	bool pid_seen;
	int write_err;		       /* errno of the failed write, or 0 */
	unsigned long long lost_bytes; /* output discarded after it */
	enum cstate st;
	LIBSSH2_CHANNEL *ch;
	char *cmdline; /* the wrapper (see cmd_new) */
	char *input;   /* the script, sent to its stdin; freed once sent */
	size_t input_len, input_off;
	double deadline;
	double open_t0; /* when its channel open went out (C_OPENING) */
	bool dirty;
	bool exec_begun; /* process_startup called (it may have gone out) */
	struct ssh_cmd *next; /* in sess->q (under sess->lock) or sess->cmds */
};

struct ssh_pool;
struct sftp;
struct sftp_chan;

/* A session's cache of libssh2's big blocks (ssh_transport.c): size
 * classes from 8 KiB, so many blocks kept of each. */
#define N_CLASSES   6 /* .. 256 KiB */
#define CACHE_DEPTH 64
struct blk;

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
	double rtt; /* the quickest channel open so far (s), 0 before one: the
		       round trip to the pod, for the next channel's window */
	char *rbuf; /* READ_CHUNK bytes: a channel read, before its write */
	struct blk *cache[N_CLASSES][CACHE_DEPTH]; /* see ss_alloc */
	int cached[N_CLASSES];
	struct sftp *sftp;     /* under lock: the pod's SFTP client served here
				  (a reference; see sftp.c) */
	struct sftp_chan *sch; /* the I/O thread's: its SFTP channel */
	bool sftp_out;	       /* the SFTP channel owns a half-sent packet (as
				  out_owner) */
};

struct ssh_pool {
	char *known_hosts, *key_path;
	bool key_explicit;
	double timeout, keepalive;
	pthread_mutex_t kh_lock; /* the known_hosts file, between learning and
				    pruning */
	pthread_mutex_t lock;
	struct sess *live;    /* one per pod key */
	struct sess *retired; /* stopping or dead, not yet joined */
};

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- ssh_output.c ---- */

/* ts = now + timeout (clamped to [0, 1e6] s) on CLOCK_MONOTONIC, for the
 * commands' condition variables. */
void monotonic_abs(struct timespec *ts, double timeout);
/* The command's own output file: a dup() of out_fd, or an unlinked
 * temporary file when out_fd is -1. -errno (logged) on failure. */
int cmd_open_output(const char *pod_key, int out_fd);
/* A queued command with two references: the caller's and the I/O
 * thread's. It runs the script (len bytes) through a fixed wrapper that
 * reads it from stdin (see ssh_output.c); fd (cmd_open_output) becomes
 * its own. */
struct ssh_cmd *cmd_new(const char *pod_key, const char *conn,
			const char *script, size_t len, int fd);
/* From the I/O thread: n bytes of output, written to the file at once (or
 * discarded and counted once a write failed). */
void cmd_output(struct ssh_cmd *c, const char *p, size_t n);
/* The line the wrapper starts its channel's stderr with: PID_TAG, its
 * pid, a newline. */
#define PID_TAG "primefs-pid "
/* From the I/O thread: n bytes of the channel's stderr. The wrapper's pid
 * line sets the pgid; anything else (what the wrapper or the login shell
 * says) joins the output, a line at a time. end: flush a partial line. */
void cmd_stderr(struct ssh_cmd *c, const char *p, size_t n, bool end);
void cmd_notify(struct ssh_cmd *c);
void cmd_started(struct ssh_cmd *c, int rc);
/* lost: "lost" as the exit text. Logs how much output was lost, if any.
 * Writes nothing to the output file. */
void cmd_finish(struct ssh_cmd *c, int status, const char *sig, bool lost);

/* ---- ssh_transport.c ---- */

/* Wakes the session's thread (its eventfd). */
void sess_wake(struct sess *s);
void sess_drain_wake(struct sess *s);
int sess_sock_wait(struct sess *s, short events, double deadline);
/* What libssh2 waits for on the socket, as poll() events. */
short sess_lib_events(struct sess *s);
const char *sess_last_error(struct sess *s);
/* TCP connect to s->host, s->port into s->sock: 0, -ECANCELED (stopped) or
 * -EHOSTUNREACH after a log line. */
int sess_connect(struct sess *s, double deadline);
/* A libssh2 session that allocates through s's cache and counts what it
 * reads into s->rx and s->heard; NULL on failure. */
LIBSSH2_SESSION *sess_lib_init(struct sess *s);
/* Frees the blocks s's cache holds. */
void sess_cache_release(struct sess *s);

/* ---- ssh_knownhosts.c ---- */

bool kh_name_ok(const char *name);
LIBSSH2_KNOWNHOSTS *kh_load(struct sess *s);
void kh_prefer_known(struct sess *s, LIBSSH2_KNOWNHOSTS *k);
int kh_check_host_key(struct sess *s, LIBSSH2_KNOWNHOSTS *k);
void kh_prune(struct ssh_pool *p, bool (*listed)(void *, const char *),
	      void *arg);

/* ---- ssh_auth.c ---- */

/* 0, or -EACCES / -EHOSTUNREACH / -EIO / -ECANCELED after a log line. */
int sess_authenticate(struct sess *s);

/* ---- ssh_session.c ---- */

/* The I/O thread of session arg (a struct sess). */
void *sess_main(void *arg);
/* Errors of the channel alone; anything else means the session is gone. */
bool sess_channel_error(int r);

/* ---- ssh_pool.c ---- */

/* Attaches f to the pod's live session, starting one if there is none,
 * and wakes it: 0, -EAGAIN (a session that is ending still holds f: try
 * again shortly) or -EIO (logged). */
int pool_sftp_attach(struct ssh_pool *p, const char *key, const char *conn,
		     struct sftp *f);

/* ---- sftp_chan.c (the I/O thread's side) ---- */

/* One round of the session's SFTP channel: opened when requests wait,
 * requests written, replies read and handed to their callers. -1 when the
 * session failed (why says how). */
int sftp_step(struct sess *s, bool *progress, char *why, size_t n);
/* The SFTP channel is open or opening (the thread must read it). */
bool sftp_io(struct sess *s);
/* Requests wait for replies (silence from the pod is suspicious). */
bool sftp_waiting(struct sess *s);
/* Its channel open is under way (one open at a time per session). */
bool sftp_opening(struct sess *s);
/* Under pool->lock: whether f may be taken by a new session; sftp_take
 * then makes s its server (a reference), before s's thread starts. */
bool sftp_takeable(struct sftp *f, struct sess *s);
void sftp_take(struct sftp *f, struct sess *s);
/* The session ends (after s->dead is set, before its libssh2 session is
 * freed): requests in flight end as lost, queued ones fail with code when
 * the session never came up (or stopping), else wait for the next
 * session; f is let go. */
void sftp_sess_end(struct sess *s, bool was_up, bool stopping, int code);

#endif
