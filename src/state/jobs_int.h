/* jobs_int.h — inside the job store (jobs.h), shared by its two files:
 * jobs.c, live jobs (the store's lists, starting, claims, output, waits,
 * signals, ends), and jobs_store.c, their records on local disk (meta,
 * cmd and out under <dir>/<pod_id>/<job>/, loading at mount, the cap on
 * outputs). Locks: the store's mutex, then a job's, then its command's;
 * none is held while logging, sending or calling a watcher. */
#ifndef PRIMEFS_JOBS_INT_H
#define PRIMEFS_JOBS_INT_H

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#include "jobs.h"
#include "watchers.h"

#define LOST_TEXT "lost\n"

/* The jobs directory, open: the store's and each job's (a job may
 * outlive its store), closed with the last. */
struct jobs_root {
	atomic_int refs;
	int fd;
};

struct job {
	atomic_int refs;
	struct jobs *store; /* NULL once the store is gone */
	struct jobs_root *root;
	char *pod_id, *name, *dir; /* dir: for messages */
	char *rel;		   /* <pod_id>/<name>, under root */
	unsigned long num;	   /* 0: a named job */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_mutex_t meta_mu; /* one meta writer at a time */
	enum job_state state;
	bool starting; /* jobs_start under way */
	bool claimed;  /* waiting for a script being written: the latest */
	char last_signal[12]; /* the last one sent, as kill -l names it */
	bool removed;	      /* record deleted: write nothing more */
	bool dropped;	      /* output dropped under the cap */
	time_t created, started, ended;
	unsigned long long seq;	  /* start order, for jobs_latest */
	unsigned long long size;  /* output bytes so far while running */
	char *exit_text;	  /* once ended */
	struct ssh_cmd *cmd;	  /* while running and after, referenced */
	int cmd_watch;		  /* on cmd, or -1 */
	struct watchers watchers; /* under mu */
};

struct pod_jobs {
	char *pod_id;
	struct job **v; /* oldest first */
	size_t n;
	unsigned long next_num;
};

struct jobs {
	char *dir;
	struct jobs_root *root;
	unsigned long long keep;
	struct runs *runs;
	pthread_mutex_t mu;
	pthread_mutex_t cap_mu; /* one cap check at a time */
	struct pod_jobs *pods;
	size_t npods;
	unsigned long long seq;
};

/* jobs.c */
struct job *jobs_alloc_job(struct jobs *j, const char *pod_id,
			   const char *name);
bool job_over(enum job_state s); /* exited or lost */
bool jobs_pod_id_ok(const char *id);
bool jobs_name_ok(const char *name);
unsigned long jobs_name_num(const char *name);
/* With j->mu. */
struct pod_jobs *jobs_find_pod(struct jobs *j, const char *pod_id, bool add);
void jobs_add_job(struct pod_jobs *p, struct job *jb);
/* Every job of the store (or of one pod), referenced; free with
 * jobs_put_all. */
struct job **jobs_all(struct jobs *j, const char *pod_id, size_t *n);
void jobs_put_all(struct job **v, size_t n);

/* jobs_store.c */
const char *jobs_state_word(enum job_state s);
bool jobs_state_of_word(const char *w, enum job_state *s);
/* <dir>/<pod_id>/<job>/<file>, for messages. */
void jobs_file_path(const struct job *jb, const char *file, struct buf *b);
/* One of the record's files (NULL: its directory), following no link:
 * fd or -errno. */
int jobs_file_open(const struct job *jb, const char *file, int flags);
void jobs_root_put(struct jobs_root *r);
/* The job's meta as it is now: 0, or -errno (logged). */
int jobs_write_meta(struct job *jb);
/* One of the record's files, replaced by data. */
int jobs_write_file(const struct job *jb, const char *file, const char *data,
		    size_t len);
void jobs_remove_record(const struct job *jb);
/* The record's directory and an empty `out`, for a new job. */
int jobs_make_record(struct job *jb);
unsigned long long jobs_out_size(const struct job *jb);
/* Drops the oldest ended jobs' outputs while all outputs together exceed
 * the cap. */
void jobs_enforce_cap(struct jobs *j);
bool jobs_is_dir(DIR *dir, const char *name);
/* Loads the records of one pod's jobs from disk into the store. */
void jobs_load_pod(struct jobs *j, const char *pod_id);

#endif
