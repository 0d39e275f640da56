/* ssh.h — runs command lines on pods over SSH, without FUSE: the engine
 * behind a pod's jobs. One libssh2 session per pod, reused for every
 * command (a channel each), driven by one I/O thread per session; each
 * command's output (stdout and stderr merged on the pod) is written to a
 * file as it arrives — the caller's, or an unlinked temporary one — so
 * memory stays bounded whatever a command prints; any number of readers
 * follow it with their own cursor. A command can be signalled as a whole
 * process group.
 * Host keys are checked against a known_hosts file, per pod: each is
 * recorded under the pod's id (as ssh's HostKeyAlias does), learned on first
 * use, refused on change; authentication is by public key (agent or key
 * file). */
#ifndef PRIMEFS_SSH_H
#define PRIMEFS_SSH_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct ssh_opts {
	const char *known_hosts; /* file; created if missing; unknown pods
				    are learned under their id */
	const char *key_path;	 /* private key file (may be NULL) */
	bool key_explicit; /* -o ssh_key= given: use only that key, no agent */
	double timeout;	   /* seconds for connect, handshake, auth, channel
			      open (default 10) */
	double keepalive;  /* seconds between keepalives (default 15, at least
			      2); a pod silent for 3 of them while commands
			      run is taken for dead */
};

struct ssh_pool; /* one libssh2 session per pod, reused */
struct ssh_cmd;	 /* one command's output and exit, refcounted */
/* A reader's place in a stream; start at {0, false}. (marker_done is no
 * longer set: nothing is dropped. Kept for callers that still name it.) */
struct ssh_cursor {
	unsigned long long pos;
	bool marker_done;
};

/* The pool copies what o points to. Network I/O happens only in the pool's
 * threads, which block every signal: SIGPIPE cannot reach them (libssh2
 * also sends with MSG_NOSIGNAL). */
struct ssh_pool *ssh_pool_new(const struct ssh_opts *o);
/* Closes every session; commands still referenced stay readable (a running
 * one ends as "lost"). No other call on p may be in progress. */
void ssh_pool_free(struct ssh_pool *p);

/* For primefs --check: a private key file's type as ssh_auth.c tells it
 * ("ssh-ed25519", "ssh-rsa", ...; "unknown" when neither a .pub beside it
 * nor a PEM header says), and whether this libssh2 signs RSA with SHA-1
 * only (before 1.11), which current OpenSSH refuses. */
void ssh_key_type(const char *path, char *out, size_t outlen);
bool ssh_rsa_refused(void);
/* Calls fn with the public key blob of each key the ssh agent
 * (SSH_AUTH_SOCK) holds, in its order; nothing when there is no agent.
 * Local I/O only (the agent's socket); libssh2 must be initialised (a
 * pool exists). */
void ssh_agent_keys(void (*fn)(void *arg, const unsigned char *blob,
			       size_t len),
		    void *arg);

/* Runs a script (len bytes, any content) on the pod known by pod_key (its
 * id, also its name in known_hosts), reachable at conn ("user@host -p
 * port", port optional → 22): the user's login shell, which sshd starts
 * on a fixed small wrapper, runs it itself, as `ssh host 'script'` does
 * (one start of that shell per command; it must take POSIX sh syntax). A
 * script over 1 KiB goes to the wrapper's stdin, so no command-line limit
 * applies (a short one rides encoded in the exec request instead). It runs
 * whole or not at all, with stdin from /dev/null and stderr merged into
 * stdout on the pod; the exit status is the script's. Blocks until the whole
 * script was sent (or that failed).
 *
 * Output: out_fd is a regular file open O_RDWR, empty; the command keeps
 * its own dup() of it (the caller may close its fd at once) and writes the
 * output there as it arrives, from position 0 (readers may pread() it);
 * -1: an unlinked temporary file ($TMPDIR, else /tmp). A write that fails
 * (ENOSPC, EIO) never stalls the channel: the rest of the output is read
 * and discarded, counted, logged (at the end, how much). The file holds
 * the command's bytes and nothing else: a connection lost mid-command
 * only makes the exit text "lost". 0 and a referenced *out, or -errno after a
 * plog() line giving the real reason: EHOSTUNREACH (connect failed or timed
 * out), EACCES (host key changed — nothing sent —, or auth refused), EINTR
 * (interrupted(arg), may be NULL, said so before the exec request went out),
 * EIO (other SSH failures). A command this returns an error for never starts
 * later, except where the log line says "it may have run". A session found dead
 * is replaced transparently. */
int ssh_run_script(struct ssh_pool *p, const char *pod_key, const char *conn,
		   const char *script, size_t len, int out_fd,
		   bool (*interrupted)(void *arg), void *arg,
		   struct ssh_cmd **out);
/* ssh_run_script of a NUL-terminated cmdline. */
int ssh_run(struct ssh_pool *p, const char *pod_key, const char *conn,
	    const char *cmdline, int out_fd, bool (*interrupted)(void *arg),
	    void *arg, struct ssh_cmd **out);
/* Pod gone: close its session; its running commands end at once as
 * "lost". */
void ssh_pool_forget(struct ssh_pool *p, const char *pod_key);
/* The pods that exist are those listed(arg, pod_key) says: the sessions of
 * the others are closed (as ssh_pool_forget), and the known_hosts lines
 * primefs wrote for them removed (other lines are kept). listed is called
 * with the pool's locks held: a lookup only. */
void ssh_pool_prune(struct ssh_pool *p,
		    bool (*listed)(void *arg, const char *pod_key), void *arg);

struct ssh_cmd *ssh_cmd_get(struct ssh_cmd *c);
void ssh_cmd_put(struct ssh_cmd *c);

/* Non-blocking: copies up to n bytes of the output file at the cursor
 * (stdout and stderr merged); returns bytes copied; 0 with *eof=true when
 * the command ended and everything was read. */
size_t ssh_cmd_read(struct ssh_cmd *c, struct ssh_cursor *cur, char *buf,
		    size_t n, bool *eof);
/* Waits up to timeout seconds for data past the cursor or the end; true when
 * either is there. */
bool ssh_cmd_wait(struct ssh_cmd *c, const struct ssh_cursor *cur,
		  double timeout);
bool ssh_cmd_done(struct ssh_cmd *c);
/* Waits up to timeout for the end, or until interrupted(arg) (may be
 * NULL) says so: 1 when done, 0 when not within timeout, -EINTR. */
int ssh_cmd_wait_done(struct ssh_cmd *c, double timeout,
		      bool (*interrupted)(void *arg), void *arg);
/* Waits up to timeout for the command's pgid (its wrapper's first line),
 * or until interrupted(arg) says so: the pgid, 0 when it has ended or the
 * pgid never came, or -EINTR. */
long ssh_cmd_wait_pgid(struct ssh_cmd *c, double timeout,
		       bool (*interrupted)(void *arg), void *arg);
/* After done: "0\n", "3\n", "signal KILL\n", or "lost\n" (the connection
 * died mid-command). Before: nothing is added. */
void ssh_cmd_exit_text(struct ssh_cmd *c, struct buf *out);
/* fn is called (from the I/O thread, no locks of ours held) whenever new
 * output or the end arrives; for FUSE poll. Returns an id for
 * ssh_cmd_unwatch. Once ssh_cmd_unwatch returns, fn is not running and will
 * not be called again (unless unwatch is called from fn itself). */
int ssh_cmd_watch(struct ssh_cmd *c, void (*fn)(void *arg), void *arg);
void ssh_cmd_unwatch(struct ssh_cmd *c, int id);

/* Bytes of output written to the file so far (its readable size). */
unsigned long long ssh_cmd_total(struct ssh_cmd *c);
/* The command's process group id on the pod (the wrapper's pid: sshd made
 * it a session leader), 0 until the wrapper has said it. */
long ssh_cmd_pgid(struct ssh_cmd *c);
/* Sends signal sig (a name as kill -l gives it, with or without "SIG", or
 * its number: 1-31, 34-64; case and a trailing newline forgiven) to the
 * command's whole process group, by running `kill -s NAME -- -PGID` on
 * the same pod (libssh2 1.10 has no signal request, and sshd would signal
 * one process only), and waits up to the pool's timeout for that to end.
 * A command whose pgid is not known yet (its wrapper's first line not
 * read) is waited for, up to the pool's timeout.
 * 0, -EINVAL (no such name or number: nothing sent), -ESRCH (the command
 * ended, its group is gone, or its pgid never came), -EPERM, or
 * ssh_run's errors; a log line says why for all but EINVAL and ESRCH.
 * -EINTR when interrupted(arg) (may be NULL) said so during a wait: before
 * the pgid came nothing was sent; after, the kill went out, its outcome
 * unknown (logged). */
int ssh_cmd_signal(struct ssh_pool *p, struct ssh_cmd *c, const char *sig,
		   bool (*interrupted)(void *arg), void *arg);

#endif
