/* intent.h — is a mkdir in pods/ a deliberate one (it rents a pod) or one
 * that a tool makes on its way to something else (cp -r, mkdir -p a/b, tar
 * -x...: refused, nothing rented)? The caller is judged by what /proc says
 * of it: its name, its command line and its working directory. And after
 * the fact: a process that rented a pod and at once creates something
 * inside it was copying, not renting. FUSE-free: the FUSE layer passes the
 * caller's pid and the mount point. */
#ifndef PRIMEFS_INTENT_H
#define PRIMEFS_INTENT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

enum intent { INTENT_DELIBERATE, INTENT_INCIDENTAL };

/* What /proc says of the process that asked. */
struct intent_caller {
	pid_t tgid;	    /* the process (the request names a thread) */
	char *comm;	    /* /proc/TGID/comm, without the newline */
	char *cmdline;	    /* /proc/PID/cmdline: raw, NULs and all */
	size_t cmdline_len; /* bytes in cmdline */
	char *cwd;	    /* /proc/PID/cwd: absolute and physical */
};

/* 0, or -errno when the process cannot be seen (gone, another pid
 * namespace: pid 0). Free with intent_caller_free in both cases. */
int intent_caller_read(pid_t pid, struct intent_caller *c);
void intent_caller_free(struct intent_caller *c);

/* The decision for a mkdir of `path` ("/pods/x", as the filesystem sees
 * it) by caller c, on the filesystem mounted at mnt (absolute, physical;
 * NULL if unknown). When incidental, `why` gets a sentence for the log.
 * It reads nothing in /proc; it lstat()s components of the caller's
 * operands that lie outside the mount, to follow symlinks. */
enum intent intent_decide(const struct intent_caller *c, const char *mnt,
			  const char *path, struct buf *why);

/* intent_caller_read, then intent_decide; a caller that cannot be seen
 * is incidental (the safe side). */
enum intent intent_of_mkdir(pid_t pid, const char *mnt, const char *path,
			    struct buf *why);

/* Seconds after a rent during which creating something inside the new pod
 * (by the renter or its children) shows that the mkdir was incidental. */
#define INTENT_WINDOW 10.0
#define INTENT_RECENT 16

/* Pods rented lately, by whom: for the after-the-fact rule. */
struct intent_recent {
	pthread_mutex_t mu;
	struct {
		char *name;
		pid_t tgid;
		double when; /* now_monotonic() */
	} v[INTENT_RECENT];
};

#define INTENT_RECENT_INIT                                                     \
	{                                                                      \
		.mu = PTHREAD_MUTEX_INITIALIZER                                \
	}

/* The process behind thread pid rented the pod `name` just now. */
void intent_note_rent(struct intent_recent *r, pid_t pid, const char *name);

/* A create, mkdir, mknod or symlink of `path` ("/pods/x/f") by thread pid:
 * true when pod x was rented within INTENT_WINDOW seconds by that process
 * or one of its ancestors. Then *name gets x (free it) and the rent is
 * forgotten: the caller returns the pod. */
bool intent_made_inside(struct intent_recent *r, pid_t pid, const char *path,
			char **name);

void intent_recent_clear(struct intent_recent *r);

/* Whether the process behind thread pid is a crawl: a program that walks a
 * tree and reads what it finds (cp, tar, rsync, grep -r, find, a file
 * manager...; see intent.c's lists), or a process that find or xargs ran
 * (`find -exec cat {} +`). A job's streams never make a crawl wait
 * (jobfiles.c); any other reader, such as `cat exit` in a script, waits.
 * A process that cannot be seen is no crawl. */
bool intent_crawler(pid_t pid);

#endif
