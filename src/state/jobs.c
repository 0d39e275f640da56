/* jobs.c — see jobs.h. The store's mutex guards the per-pod lists (small
 * structs, no output); each job's own mutex guards its state, times, exit
 * text, command and watchers. A job's output lives only in its `out` file:
 * readers pread it, and its size is known without reading it. Lock order:
 * the store's, then a job's, then its command's; none is held while
 * logging, sending or calling a watcher. Files are opened relative to the
 * jobs directory's fd, following no link (statedir.h). */
#include "jobs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "runs.h"
#include "ssh.h"

#define LOST_TEXT "lost\n"

struct job_watcher {
	int id;
	void (*fn)(void *arg);
	void *arg;
	struct job_watcher *next;
};

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
	bool removed;  /* record deleted: write nothing more */
	bool dropped;  /* output dropped under the cap */
	time_t created, started, ended;
	unsigned long long seq;	 /* start order, for jobs_latest */
	unsigned long long size; /* output bytes so far while running */
	char *exit_text;	 /* once ended */
	struct ssh_cmd *cmd;	 /* while running and after, referenced */
	int cmd_watch;		 /* on cmd, or -1 */
	struct job_watcher *watchers;
	int next_watch;
	bool notifying;
	pthread_t notifier;
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

static void end_now(struct job *jb);

/* --- names ---------------------------------------------------------- */

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Pod ids as directory names: no separator, nothing hidden, no dot-dirs. */
static bool pod_id_ok(const char *id)
{
	return id && safe_name(id) && id[0] != '.';
}

/* A named job's name: the pod name rules, and neither a number nor
 * "latest" (jobs/latest links to the newest job). */
static bool job_name_ok(const char *name)
{
	return name && safe_name(name) && name[0] != '.' && !all_digits(name) &&
	       strcmp(name, "latest") != 0;
}

/* A numbered job's name: 1, 2, ... without leading zeros. */
static unsigned long name_num(const char *name)
{
	if (!all_digits(name) || name[0] == '0' || strlen(name) > 12)
		return 0;
	return strtoul(name, NULL, 10);
}

const char *job_state_text(enum job_state s)
{
	switch (s) {
	case JOB_WAITING:
		return "waiting\n";
	case JOB_RUNNING:
		return "running\n";
	case JOB_EXITED:
		return "exited\n";
	case JOB_LOST:
		return "lost\n";
	}
	return "lost\n";
}

static const char *state_word(enum job_state s)
{
	static const char *w[] = {"waiting", "running", "exited", "lost"};
	return w[s];
}

static bool state_of_word(const char *w, enum job_state *s)
{
	for (int i = JOB_WAITING; i <= JOB_LOST; i++)
		if (!strcmp(w, state_word(i))) {
			*s = i;
			return true;
		}
	return false;
}

static void file_path(const struct job *jb, const char *file, struct buf *b)
{
	buf_reset(b);
	buf_printf(b, "%s/%s", jb->dir, file);
}

/* One of the record's files (NULL: its directory), following no link:
 * fd or -errno. */
static int job_open(const struct job *jb, const char *file, int flags)
{
	struct buf p;
	buf_init(&p);
	buf_printf(&p, "%s%s%s", jb->rel, file ? "/" : "", file ? file : "");
	int fd = openat_nofollow(jb->root->fd, p.data, flags, 0600);
	buf_free(&p);
	return fd;
}

static void root_put(struct jobs_root *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		close(r->fd);
		free(r);
	}
}

/* --- the job object ------------------------------------------------- */

static struct job *job_alloc(struct jobs *j, const char *pod_id,
			     const char *name)
{
	struct job *jb = xcalloc(1, sizeof *jb);
	atomic_init(&jb->refs, 1);
	jb->store = j;
	jb->pod_id = xstrdup(pod_id);
	jb->name = xstrdup(name);
	jb->num = name_num(name);
	struct buf d;
	buf_init(&d);
	buf_printf(&d, "%s/%s/%s", j->dir, pod_id, name);
	jb->dir = buf_steal(&d);
	buf_printf(&d, "%s/%s", pod_id, name);
	jb->rel = buf_steal(&d);
	jb->root = j->root;
	atomic_fetch_add(&jb->root->refs, 1);
	pthread_mutex_init(&jb->mu, NULL);
	pthread_mutex_init(&jb->meta_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&jb->cond, &ca);
	pthread_condattr_destroy(&ca);
	jb->cmd_watch = -1;
	jb->next_watch = 1;
	return jb;
}

struct job *job_get(struct job *jb)
{
	if (jb)
		atomic_fetch_add(&jb->refs, 1);
	return jb;
}

void job_put(struct job *jb)
{
	if (!jb || atomic_fetch_sub(&jb->refs, 1) != 1)
		return;
	if (jb->cmd && jb->cmd_watch >= 0)
		ssh_cmd_unwatch(jb->cmd, jb->cmd_watch);
	ssh_cmd_put(jb->cmd);
	while (jb->watchers) {
		struct job_watcher *w = jb->watchers;
		jb->watchers = w->next;
		free(w);
	}
	pthread_mutex_destroy(&jb->mu);
	pthread_mutex_destroy(&jb->meta_mu);
	pthread_cond_destroy(&jb->cond);
	free(jb->exit_text);
	free(jb->pod_id);
	free(jb->name);
	free(jb->dir);
	free(jb->rel);
	root_put(jb->root);
	free(jb);
}

const char *job_name(const struct job *jb)
{
	return jb->name;
}

enum job_state job_state(struct job *jb)
{
	pthread_mutex_lock(&jb->mu);
	enum job_state s = jb->state;
	pthread_mutex_unlock(&jb->mu);
	return s;
}

time_t job_started(struct job *jb)
{
	pthread_mutex_lock(&jb->mu);
	time_t t = jb->started;
	pthread_mutex_unlock(&jb->mu);
	return t;
}

time_t job_ended(struct job *jb)
{
	pthread_mutex_lock(&jb->mu);
	time_t t = jb->ended;
	pthread_mutex_unlock(&jb->mu);
	return t;
}

static bool ended(enum job_state s)
{
	return s == JOB_EXITED || s == JOB_LOST;
}

/* --- records on disk ------------------------------------------------ */

/* Writes the job's meta as it is now (atomic_write_file). Writers take
 * turns, each writing the state as of its turn, so the last one wins with
 * the latest state. 0, or -errno (logged) with the meta as it was. */
static int write_meta(struct job *jb)
{
	pthread_mutex_lock(&jb->meta_mu);
	json_object *o = json_object_new_object();
	pthread_mutex_lock(&jb->mu);
	bool removed = jb->removed;
	json_object_object_add(o, "pod_id", json_object_new_string(jb->pod_id));
	json_object_object_add(o, "name", json_object_new_string(jb->name));
	json_object_object_add(o, "state",
			       json_object_new_string(state_word(jb->state)));
	json_object_object_add(o, "created",
			       json_object_new_int64(jb->created));
	json_object_object_add(o, "started",
			       json_object_new_int64(jb->started));
	json_object_object_add(o, "ended", json_object_new_int64(jb->ended));
	if (jb->exit_text)
		json_object_object_add(o, "exit",
				       json_object_new_string(jb->exit_text));
	json_object_object_add(o, "dropped",
			       json_object_new_boolean(jb->dropped));
	pthread_mutex_unlock(&jb->mu);
	int rc = 0;
	if (!removed) {
		struct buf m;
		buf_init(&m);
		buf_adds(&m, json_object_to_json_string_ext(
				 o, JSON_C_TO_STRING_PLAIN));
		buf_addc(&m, '\n');
		int dfd = job_open(jb, NULL, O_RDONLY | O_DIRECTORY);
		rc = dfd < 0 ? dfd
			     : atomic_write_file(dfd, "meta", m.data, m.len);
		if (dfd >= 0)
			close(dfd);
		buf_free(&m);
	}
	json_object_put(o);
	pthread_mutex_unlock(&jb->meta_mu);
	if (rc)
		plog("jobs", jb->dir, "cannot write the job's record: %s",
		     strerror(-rc));
	return rc;
}

/* One of the record's files, replaced by data. */
static int write_file(const struct job *jb, const char *file, const char *data,
		      size_t len)
{
	int fd = job_open(jb, file, O_WRONLY | O_CREAT | O_TRUNC);
	if (fd < 0)
		return fd;
	int rc = 0;
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		data += n;
		len -= (size_t)n;
	}
	if (close(fd) && !rc)
		rc = -errno;
	return rc;
}

/* The record's files (whatever they are: a link is unlinked, not
 * followed), then its directory. */
static void remove_record(const struct job *jb)
{
	int fd = job_open(jb, NULL, O_RDONLY | O_DIRECTORY);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	} else if (fd >= 0)
		close(fd);
	fd = openat_nofollow(jb->root->fd, jb->pod_id, O_RDONLY | O_DIRECTORY,
			     0);
	if (fd >= 0) {
		unlinkat(fd, jb->name, AT_REMOVEDIR);
		close(fd);
	}
}

/* The record's directory and an empty `out`, for a new job. */
static int make_record(struct job *jb)
{
	int fd = mkdir_p(jb->root->fd, jb->pod_id, false);
	int rc = fd < 0 ? fd : mkdirat(fd, jb->name, 0700) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (!rc)
		rc = write_file(jb, "out", "", 0);
	return rc;
}

/* --- the store's lists ---------------------------------------------- */

/* With j->mu. */
static struct pod_jobs *find_pod(struct jobs *j, const char *pod_id, bool add)
{
	for (size_t i = 0; i < j->npods; i++)
		if (!strcmp(j->pods[i].pod_id, pod_id))
			return &j->pods[i];
	if (!add)
		return NULL;
	j->pods = xrealloc(j->pods, (j->npods + 1) * sizeof *j->pods);
	struct pod_jobs *p = &j->pods[j->npods++];
	memset(p, 0, sizeof *p);
	p->pod_id = xstrdup(pod_id);
	p->next_num = 1;
	return p;
}

/* With j->mu. */
static struct job *find_job(struct pod_jobs *p, const char *name)
{
	for (size_t i = 0; p && i < p->n; i++)
		if (!strcmp(p->v[i]->name, name))
			return p->v[i];
	return NULL;
}

/* With j->mu: the list takes the caller's reference. */
static void add_job(struct pod_jobs *p, struct job *jb)
{
	p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
	p->v[p->n++] = jb;
	if (jb->num >= p->next_num)
		p->next_num = jb->num + 1;
}

/* With j->mu: the list's reference, now the caller's. */
static struct job *take_job(struct pod_jobs *p, struct job *jb)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i] == jb) {
			memmove(&p->v[i], &p->v[i + 1],
				(p->n - i - 1) * sizeof *p->v);
			p->n--;
			return jb;
		}
	return NULL;
}

/* Every job of the store (or of one pod), referenced; free with
 * put_all. */
static struct job **all_jobs(struct jobs *j, const char *pod_id, size_t *n)
{
	pthread_mutex_lock(&j->mu);
	size_t count = 0;
	for (size_t i = 0; i < j->npods; i++)
		if (!pod_id || !strcmp(j->pods[i].pod_id, pod_id))
			count += j->pods[i].n;
	struct job **v = xmalloc((count + 1) * sizeof *v);
	*n = 0;
	for (size_t i = 0; i < j->npods; i++)
		if (!pod_id || !strcmp(j->pods[i].pod_id, pod_id))
			for (size_t k = 0; k < j->pods[i].n; k++)
				v[(*n)++] = job_get(j->pods[i].v[k]);
	pthread_mutex_unlock(&j->mu);
	return v;
}

static void put_all(struct job **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		job_put(v[i]);
	free(v);
}

/* --- watchers ------------------------------------------------------- */

static void notify(struct job *jb)
{
	pthread_mutex_lock(&jb->mu);
	pthread_cond_broadcast(&jb->cond);
	size_t n = 0;
	for (struct job_watcher *w = jb->watchers; w; w = w->next)
		n++;
	if (!n) {
		pthread_mutex_unlock(&jb->mu);
		return;
	}
	/* One notifier at a time, so that unwatch can wait it out. */
	while (jb->notifying)
		pthread_cond_wait(&jb->cond, &jb->mu);
	jb->notifying = true;
	jb->notifier = pthread_self();
	struct job_watcher *copy = xmalloc((n + 1) * sizeof *copy);
	n = 0;
	for (struct job_watcher *w = jb->watchers; w; w = w->next)
		copy[n++] = *w;
	pthread_mutex_unlock(&jb->mu);
	for (size_t i = 0; i < n; i++)
		copy[i].fn(copy[i].arg);
	free(copy);
	pthread_mutex_lock(&jb->mu);
	jb->notifying = false;
	pthread_cond_broadcast(&jb->cond);
	pthread_mutex_unlock(&jb->mu);
}

/* The job no longer follows its command's output (its watch taken off,
 * outside jb->mu: ssh_cmd_unwatch waits for a running callback). */
static void stop_watching_cmd(struct job *jb)
{
	pthread_mutex_lock(&jb->mu);
	struct ssh_cmd *c = jb->cmd;
	int w = jb->cmd_watch;
	jb->cmd_watch = -1;
	pthread_mutex_unlock(&jb->mu);
	if (c && w >= 0)
		ssh_cmd_unwatch(c, w);
}

int job_watch(struct job *jb, void (*fn)(void *arg), void *arg)
{
	struct job_watcher *w = xcalloc(1, sizeof *w);
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&jb->mu);
	w->id = jb->next_watch++;
	w->next = jb->watchers;
	jb->watchers = w;
	pthread_mutex_unlock(&jb->mu);
	return w->id;
}

void job_unwatch(struct job *jb, int id)
{
	pthread_mutex_lock(&jb->mu);
	for (struct job_watcher **pp = &jb->watchers; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct job_watcher *w = *pp;
			*pp = w->next;
			free(w);
			break;
		}
	while (jb->notifying && !pthread_equal(jb->notifier, pthread_self()))
		pthread_cond_wait(&jb->cond, &jb->mu);
	pthread_mutex_unlock(&jb->mu);
}

/* --- the cap -------------------------------------------------------- */

/* The size of the job's `out` (0 if it is not a file). */
static unsigned long long out_size(const struct job *jb)
{
	int fd = job_open(jb, "out", O_PATH);
	struct stat st;
	bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (fd >= 0)
		close(fd);
	return ok ? (unsigned long long)st.st_size : 0;
}

static int older(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a;
	const struct job *y = *(struct job *const *)b;
	if (x->ended != y->ended)
		return x->ended < y->ended ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Drops the oldest ended jobs' outputs while all outputs together exceed
 * the cap; running and waiting ones are never touched. */
static void enforce_cap(struct jobs *j)
{
	pthread_mutex_lock(&j->cap_mu);
	size_t n;
	struct job **v = all_jobs(j, NULL, &n);
	unsigned long long total = 0;
	struct job **cand = xmalloc((n + 1) * sizeof *cand);
	size_t nc = 0;
	struct buf p;
	buf_init(&p);
	for (size_t i = 0; i < n; i++) {
		struct job *jb = v[i];
		pthread_mutex_lock(&jb->mu);
		bool candidate =
		    ended(jb->state) && !jb->dropped && !jb->removed;
		pthread_mutex_unlock(&jb->mu);
		/* The file, also while running: what is on disk now (the
		 * SSH layer writes before it tells, so jb->size may lag). */
		total += out_size(jb);
		if (candidate)
			cand[nc++] = jb;
	}
	if (total <= j->keep) {
		buf_free(&p);
		free(cand);
		put_all(v, n);
		pthread_mutex_unlock(&j->cap_mu);
		return;
	}
	/* ended and seq only change before a job ends: stable here. */
	qsort(cand, nc, sizeof *cand, older);
	struct buf cap;
	buf_init(&cap);
	fmt_number(&cap, (double)j->keep / 1048576);
	for (size_t i = 0; i < nc && total > j->keep; i++) {
		struct job *jb = cand[i];
		file_path(jb, "out", &p);
		unsigned long long size = out_size(jb);
		/* Emptied, nothing written in its place: `out` holds the
		 * job's bytes or none (meta's `dropped` and log say so). */
		int fd = job_open(jb, "out", O_WRONLY | O_TRUNC);
		if (fd >= 0)
			close(fd);
		if (fd < 0) {
			plog("jobs", p.data, "cannot drop the output: %s",
			     strerror(-fd));
			continue;
		}
		total -= size;
		pthread_mutex_lock(&jb->mu);
		jb->dropped = true;
		pthread_mutex_unlock(&jb->mu);
		write_meta(jb);
		plog("jobs", p.data,
		     "output dropped (%llu bytes), the oldest, to keep jobs "
		     "under %s MiB (jobs_keep)",
		     size, cap.data);
	}
	buf_free(&cap);
	buf_free(&p);
	free(cand);
	put_all(v, n);
	pthread_mutex_unlock(&j->cap_mu);
}

/* --- running -------------------------------------------------------- */

/* The activity hook (jobs_set_activity_hook): one store has it (the
 * mount's), called with hook_mu held. */
static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static const struct jobs *hook_store;
static void (*hook)(void *arg, const char *pod_id);
static void *hook_arg;

/* A job of the pod started or ended: jobs_set_activity_hook's call. */
static void activity(const struct jobs *j, const char *pod_id)
{
	pthread_mutex_lock(&hook_mu);
	if (j && j == hook_store && hook)
		hook(hook_arg, pod_id);
	pthread_mutex_unlock(&hook_mu);
}

void jobs_set_activity_hook(struct jobs *j,
			    void (*fn)(void *arg, const char *pod_id),
			    void *arg)
{
	pthread_mutex_lock(&hook_mu);
	hook_store = fn ? j : NULL;
	hook = fn;
	hook_arg = arg;
	pthread_mutex_unlock(&hook_mu);
}

/* The job's command ended (or its pod went): the record says how, once. */
static void finish(struct job *jb, bool force_lost)
{
	pthread_mutex_lock(&jb->mu);
	if (jb->state != JOB_RUNNING) {
		pthread_mutex_unlock(&jb->mu);
		return;
	}
	struct buf text;
	buf_init(&text);
	if (jb->cmd && !force_lost)
		ssh_cmd_exit_text(jb->cmd, &text);
	if (!text.len)
		buf_adds(&text, LOST_TEXT);
	jb->exit_text = buf_steal(&text);
	jb->state = strcmp(jb->exit_text, LOST_TEXT) ? JOB_EXITED : JOB_LOST;
	jb->ended = time(NULL);
	struct jobs *store = jb->store;
	pthread_mutex_unlock(&jb->mu);
	write_meta(jb);
	notify(jb);
	activity(store, jb->pod_id);
	if (store)
		enforce_cap(store);
}

/* The command's watch: new output or the end. */
static void on_cmd(void *arg)
{
	struct job *jb = arg;
	pthread_mutex_lock(&jb->mu);
	struct ssh_cmd *c = jb->state == JOB_RUNNING ? jb->cmd : NULL;
	pthread_mutex_unlock(&jb->mu);
	if (c) { /* the SSH layer wrote it to `out` before telling */
		unsigned long long size = ssh_cmd_total(c);
		pthread_mutex_lock(&jb->mu);
		if (size > jb->size)
			jb->size = size;
		pthread_cond_broadcast(&jb->cond);
		pthread_mutex_unlock(&jb->mu);
	}
	if (c && ssh_cmd_done(c))
		finish(jb, false);
	else
		notify(jb);
}

/* Starts the job's script: the record's cmd written, then the command
 * sent. 0 with the job running, or -errno (nothing running). */
static int launch(struct jobs *j, struct job *jb, const char *script,
		  size_t len, bool (*interrupted)(void *), void *arg)
{
	if (!j->runs)
		return -ENOTCONN;
	struct buf p;
	buf_init(&p);
	file_path(jb, "cmd", &p);
	int rc = write_file(jb, "cmd", script, len);
	int fd = -1;
	if (!rc) {
		file_path(jb, "out", &p);
		fd = job_open(jb, "out", O_RDWR | O_CREAT | O_TRUNC);
		if (fd < 0)
			rc = fd;
	}
	if (rc)
		plog("jobs", p.data, "cannot write the job's record: %s",
		     strerror(-rc));
	buf_free(&p);
	struct ssh_cmd *cmd = NULL;
	if (!rc)
		rc = runs_start(j->runs, jb->pod_id, script, len, fd,
				interrupted, arg, &cmd);
	if (fd >= 0)
		close(fd); /* the command has its own */
	if (rc)
		return rc;
	pthread_mutex_lock(&j->mu);
	unsigned long long seq = ++j->seq;
	pthread_mutex_unlock(&j->mu);
	pthread_mutex_lock(&jb->mu);
	jb->cmd = cmd;
	jb->state = JOB_RUNNING;
	jb->starting = false;
	jb->started = time(NULL);
	jb->seq = seq;
	jb->size = 0;
	pthread_mutex_unlock(&jb->mu);
	write_meta(jb);
	activity(j, jb->pod_id);
	int w = ssh_cmd_watch(cmd, on_cmd, jb);
	pthread_mutex_lock(&jb->mu);
	jb->cmd_watch = w;
	pthread_mutex_unlock(&jb->mu);
	on_cmd(jb); /* what came before the watch */
	pthread_mutex_lock(&jb->mu);
	bool removed = jb->removed;
	pthread_mutex_unlock(&jb->mu);
	if (removed) { /* rmdir'ed while it was starting */
		job_signal(j, jb, "KILL");
		end_now(jb);
	}
	return 0;
}

int jobs_run(struct jobs *j, const char *pod_id, const char *script, size_t len,
	     bool (*interrupted)(void *arg), void *arg, struct job **out)
{
	*out = NULL;
	if (!pod_id_ok(pod_id))
		return -ENOENT;
	if (len > RUNS_MAX_SCRIPT || !j->runs) /* logged, nothing recorded */
		return j->runs ? runs_start(j->runs, pod_id, script, len, -1,
					    interrupted, arg, NULL)
			       : -ENOTCONN;
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = find_pod(j, pod_id, true);
	unsigned long num = p->next_num++;
	pthread_mutex_unlock(&j->mu);
	char name[32];
	struct job *jb = NULL;
	int rc = -EEXIST;
	/* A number whose directory is somehow there already is skipped. */
	for (int tries = 0; rc == -EEXIST && tries < 100; tries++) {
		snprintf(name, sizeof name, "%lu", num);
		jb = job_alloc(j, pod_id, name);
		rc = make_record(jb);
		if (rc == -EEXIST) {
			job_put(jb);
			jb = NULL;
			pthread_mutex_lock(&j->mu);
			p = find_pod(j, pod_id, true);
			num = p->next_num++;
			pthread_mutex_unlock(&j->mu);
		}
	}
	if (rc) {
		struct buf d;
		buf_init(&d);
		buf_printf(&d, "%s/%s", j->dir, pod_id);
		plog("jobs", d.data, "cannot make a job's record: %s",
		     strerror(-rc));
		buf_free(&d);
		job_put(jb);
		return rc;
	}
	jb->created = time(NULL);
	jb->starting = true;
	rc = write_meta(jb);
	if (!rc)
		rc = launch(j, jb, script, len, interrupted, arg);
	if (rc) {
		pthread_mutex_lock(&jb->mu);
		jb->removed = true;
		pthread_mutex_unlock(&jb->mu);
		remove_record(jb);
		job_put(jb);
		return rc;
	}
	pthread_mutex_lock(&j->mu);
	add_job(find_pod(j, pod_id, true), job_get(jb));
	pthread_mutex_unlock(&j->mu);
	/* A job that ended before it was listed here was not counted by
	 * its own finish()'s cap check: count it now. */
	if (ended(job_state(jb)))
		enforce_cap(j);
	*out = jb;
	return 0;
}

int jobs_create(struct jobs *j, const char *pod_id, const char *name)
{
	if (!pod_id_ok(pod_id))
		return -ENOENT;
	if (!job_name_ok(name))
		return -EINVAL;
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = find_pod(j, pod_id, true);
	if (find_job(p, name)) {
		pthread_mutex_unlock(&j->mu);
		return -EEXIST;
	}
	struct job *jb = job_alloc(j, pod_id, name);
	jb->created = time(NULL);
	/* Listed at once, so that a second mkdir finds it; its record is
	 * made without the lock. */
	add_job(p, jb);
	job_get(jb);
	pthread_mutex_unlock(&j->mu);
	int rc = make_record(jb);
	if (rc == -EEXIST) { /* a leftover no load took: replace it */
		remove_record(jb);
		rc = make_record(jb);
	}
	if (rc)
		plog("jobs", jb->dir, "cannot make the job's record: %s",
		     strerror(-rc));
	else if ((rc = write_meta(jb))) /* logged */
		remove_record(jb);
	if (rc) {
		pthread_mutex_lock(&j->mu);
		p = find_pod(j, pod_id, false);
		if (p && take_job(p, jb))
			job_put(jb);
		pthread_mutex_unlock(&j->mu);
	}
	job_put(jb);
	return rc;
}

int jobs_start(struct jobs *j, struct job *jb, const char *script, size_t len,
	       bool (*interrupted)(void *arg), void *arg)
{
	pthread_mutex_lock(&jb->mu);
	if (jb->state != JOB_WAITING || jb->starting || jb->removed) {
		pthread_mutex_unlock(&jb->mu);
		return -EBUSY;
	}
	jb->starting = true;
	pthread_mutex_unlock(&jb->mu);
	int rc = len > RUNS_MAX_SCRIPT
		     ? (j->runs ? runs_start(j->runs, jb->pod_id, script, len,
					     -1, interrupted, arg, NULL)
				: -E2BIG)
		     : launch(j, jb, script, len, interrupted, arg);
	if (rc) {
		pthread_mutex_lock(&jb->mu);
		jb->starting = false;
		pthread_mutex_unlock(&jb->mu);
	}
	return rc;
}

/* --- reading -------------------------------------------------------- */

void job_cmd(struct job *jb, struct buf *out)
{
	if (job_state(jb) == JOB_WAITING)
		return;
	int fd = job_open(jb, "cmd", O_RDONLY);
	if (fd < 0)
		return;
	char b[65536];
	size_t total = 0;
	for (;;) {
		ssize_t n = read(fd, b, sizeof b);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || total + (size_t)n > RUNS_MAX_SCRIPT)
			break;
		buf_add(out, b, (size_t)n);
		total += (size_t)n;
	}
	close(fd);
}

/* While the job runs: the bytes its command has written to `out` (no
 * more is read, even if the file shows more). */
static bool running_size(struct job *jb, unsigned long long *size)
{
	pthread_mutex_lock(&jb->mu);
	bool running = jb->state == JOB_RUNNING;
	struct ssh_cmd *c = running && jb->cmd ? ssh_cmd_get(jb->cmd) : NULL;
	*size = jb->size;
	pthread_mutex_unlock(&jb->mu);
	if (c) {
		unsigned long long t = ssh_cmd_total(c);
		if (t > *size)
			*size = t;
		ssh_cmd_put(c);
	}
	return running;
}

unsigned long long job_size(struct job *jb)
{
	unsigned long long size;
	if (running_size(jb, &size))
		return size;
	return out_size(jb);
}

ssize_t job_read(struct job *jb, unsigned long long off, char *buf, size_t n,
		 bool *eof)
{
	*eof = false;
	unsigned long long limit;
	running_size(jb, &limit);
	enum job_state s = job_state(jb);
	if (s == JOB_WAITING)
		return 0;
	int fd = job_open(jb, "out", O_RDONLY);
	if (fd < 0) {
		*eof = ended(s);
		return ended(s) ? 0 : fd;
	}
	if (s == JOB_RUNNING) /* only what is known to be written */
		n = off >= limit ? 0 : (limit - off < n ? limit - off : n);
	ssize_t got = 0;
	if (n) {
		do
			got = pread(fd, buf, n, (off_t)off);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			got = -errno;
	}
	close(fd);
	if (got == 0 && ended(s))
		*eof = true;
	return got;
}

static void deadline_of(struct timespec *ts, double timeout)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (timeout < 0)
		timeout = 0;
	if (timeout > 1e6)
		timeout = 1e6;
	long long ns = (long long)(timeout * 1e9) + ts->tv_nsec;
	ts->tv_sec += ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

bool job_wait(struct job *jb, unsigned long long off, double timeout)
{
	struct timespec ts;
	deadline_of(&ts, timeout);
	pthread_mutex_lock(&jb->mu);
	while (!ended(jb->state) &&
	       !(jb->state == JOB_RUNNING && jb->size > off))
		if (pthread_cond_timedwait(&jb->cond, &jb->mu, &ts) ==
		    ETIMEDOUT)
			break;
	bool r =
	    ended(jb->state) || (jb->state == JOB_RUNNING && jb->size > off);
	pthread_mutex_unlock(&jb->mu);
	return r;
}

bool job_wait_done(struct job *jb, double timeout)
{
	struct timespec ts;
	deadline_of(&ts, timeout);
	pthread_mutex_lock(&jb->mu);
	while (!ended(jb->state))
		if (pthread_cond_timedwait(&jb->cond, &jb->mu, &ts) ==
		    ETIMEDOUT)
			break;
	bool r = ended(jb->state);
	pthread_mutex_unlock(&jb->mu);
	return r;
}

bool job_exit_text(struct job *jb, struct buf *out)
{
	pthread_mutex_lock(&jb->mu);
	bool done = ended(jb->state);
	if (done)
		buf_adds(out, jb->exit_text ? jb->exit_text : LOST_TEXT);
	pthread_mutex_unlock(&jb->mu);
	return done;
}

int job_signal(struct jobs *j, struct job *jb, const char *sig)
{
	pthread_mutex_lock(&jb->mu);
	struct ssh_cmd *c =
	    jb->state == JOB_RUNNING && jb->cmd ? ssh_cmd_get(jb->cmd) : NULL;
	pthread_mutex_unlock(&jb->mu);
	int rc = c && j->runs ? ssh_cmd_signal(j->runs->pool, c, sig) : -ESRCH;
	ssh_cmd_put(c);
	return rc;
}

/* --- the store ------------------------------------------------------ */

static int load_order(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a;
	const struct job *y = *(struct job *const *)b;
	time_t tx = x->started ? x->started : x->created;
	time_t ty = y->started ? y->started : y->created;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	if (x->num != y->num)
		return x->num < y->num ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool get_time(json_object *o, const char *key, time_t *t)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return false;
	int64_t x = json_object_get_int64(v);
	if (x < 0)
		return false;
	*t = (time_t)x;
	return true;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool exit_text_ok(const char *t)
{
	size_t n = strlen(t);
	if (n < 2 || n > 64 || t[n - 1] != '\n')
		return false;
	for (size_t i = 0; i + 1 < n; i++)
		if (!isprint((unsigned char)t[i]))
			return false;
	return true;
}

/* One record: a job, or NULL (skipped, *why says why; *lost when it was
 * running). */
static struct job *load_job(struct jobs *j, const char *pod_id,
			    const char *name, const char **why, bool *lost)
{
	*lost = false;
	struct job *jb = job_alloc(j, pod_id, name);
	json_object *o = NULL;
	int fd = job_open(jb, "meta", O_RDONLY);
	*why = "no readable meta";
	if (fd >= 0) {
		char b[4096];
		ssize_t n = read(fd, b, sizeof b - 1);
		close(fd);
		*why = "meta is not JSON";
		if (n > 0 && n < (ssize_t)sizeof b - 1) {
			b[n] = '\0';
			o = json_tokener_parse(b);
		}
	}
	const char *s;
	enum job_state st;
	if (o && !json_object_is_type(o, json_type_object))
		*why = "meta is not a JSON object";
	else if (o && (!(s = get_str(o, "pod_id")) || strcmp(s, pod_id) ||
		       !(s = get_str(o, "name")) || strcmp(s, name)))
		*why = "meta names another job";
	else if (o && (!(s = get_str(o, "state")) || !state_of_word(s, &st)))
		*why = "meta has no valid state";
	else if (o && (!get_time(o, "created", &jb->created) ||
		       !get_time(o, "started", &jb->started) ||
		       !get_time(o, "ended", &jb->ended)))
		*why = "meta has no valid times";
	else if (o) {
		*why = NULL;
		json_object *d;
		jb->dropped = json_object_object_get_ex(o, "dropped", &d) &&
			      json_object_get_boolean(d);
		const char *e = get_str(o, "exit");
		if (st == JOB_RUNNING || (jb->num && st == JOB_WAITING)) {
			/* Its mount ended while it ran (or before it
			 * started): nothing will tell its end now. */
			*lost = true;
			st = JOB_LOST;
			e = LOST_TEXT;
			if (!jb->started)
				jb->started = jb->created;
			jb->ended = time(NULL);
		} else if (ended(st) && !(e && exit_text_ok(e))) {
			st = JOB_LOST;
			e = LOST_TEXT;
		}
		jb->state = st;
		if (ended(st))
			jb->exit_text = xstrdup(e);
		else
			jb->started = jb->ended = 0;
	}
	json_object_put(o);
	if (*why) {
		job_put(jb);
		return NULL;
	}
	return jb;
}

/* A directory itself, not a link to one. */
static bool is_dir(DIR *dir, const char *name)
{
	struct stat st;
	return fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

static void load_pod(struct jobs *j, const char *pod_id)
{
	struct buf d;
	buf_init(&d);
	buf_printf(&d, "%s/%s", j->dir, pod_id);
	int fd =
	    openat_nofollow(j->root->fd, pod_id, O_RDONLY | O_DIRECTORY, 0);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		buf_free(&d);
		return;
	}
	struct job **v = NULL;
	size_t n = 0;
	unsigned long highest = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		const char *name = e->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		unsigned long num = name_num(name);
		if (num > highest)
			highest = num; /* never reused, even if unreadable */
		if (!num && !job_name_ok(name)) {
			plog("jobs", d.data,
			     "skipped a record with a bad name");
			continue;
		}
		if (!is_dir(dir, name)) {
			plog("jobs", d.data, "skipped %s: not a directory",
			     name);
			continue;
		}
		const char *why;
		bool lost;
		struct job *jb = load_job(j, pod_id, name, &why, &lost);
		if (!jb) {
			plog("jobs", d.data, "skipped job %s: %s", name, why);
			continue;
		}
		if (lost) {
			plog("jobs", jb->dir,
			     "was running when its mount ended: now lost");
			write_meta(jb);
		}
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = jb;
	}
	closedir(dir);
	buf_free(&d);
	if (v)
		qsort(v, n, sizeof *v, load_order);
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = find_pod(j, pod_id, true);
	for (size_t i = 0; i < n; i++) {
		if (v[i]->started)
			v[i]->seq = ++j->seq;
		add_job(p, v[i]);
	}
	if (highest >= p->next_num)
		p->next_num = highest + 1;
	pthread_mutex_unlock(&j->mu);
	free(v);
}

struct jobs *jobs_new(const struct jobs_opts *o)
{
	int root = o->dir_fd > 0 ? fcntl(o->dir_fd, F_DUPFD_CLOEXEC, 0)
				 : mkdir_p(AT_FDCWD, o->dir, true);
	if (root < 0 && o->dir_fd > 0)
		root = -errno;
	int fd = root < 0
		     ? root
		     : openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		plog("jobs", o->dir, "cannot use the jobs directory: %s",
		     strerror(root < 0 ? -root : errno));
		if (fd >= 0)
			close(fd);
		if (root >= 0)
			close(root);
		return NULL;
	}
	struct jobs *j = xcalloc(1, sizeof *j);
	j->root = xcalloc(1, sizeof *j->root);
	atomic_init(&j->root->refs, 1);
	j->root->fd = root;
	j->dir = xstrdup(o->dir);
	j->keep = o->keep_bytes;
	j->runs = o->runs;
	pthread_mutex_init(&j->mu, NULL);
	pthread_mutex_init(&j->cap_mu, NULL);
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!pod_id_ok(e->d_name) || !is_dir(dir, e->d_name)) {
			plog("jobs", o->dir,
			     "skipped an entry that is no pod's directory");
			continue;
		}
		load_pod(j, e->d_name);
	}
	closedir(dir);
	enforce_cap(j);
	return j;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	size_t n;
	struct job **v = all_jobs(j, NULL, &n);
	for (size_t i = 0; i < n; i++) {
		struct job *jb = v[i];
		stop_watching_cmd(jb);
		pthread_mutex_lock(&jb->mu);
		jb->store = NULL;
		pthread_mutex_unlock(&jb->mu);
		end_now(jb); /* a running one: lost for its readers */
	}
	put_all(v, n);
	for (size_t i = 0; i < j->npods; i++) {
		for (size_t k = 0; k < j->pods[i].n; k++)
			job_put(j->pods[i].v[k]);
		free(j->pods[i].v);
		free(j->pods[i].pod_id);
	}
	free(j->pods);
	pthread_mutex_destroy(&j->mu);
	pthread_mutex_destroy(&j->cap_mu);
	root_put(j->root);
	free(j->dir);
	free(j);
}

int jobs_list(struct jobs *j, const char *pod_id,
	      int (*add)(void *ctx, const char *name), void *ctx)
{
	size_t n;
	struct job **v = all_jobs(j, pod_id, &n);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add(ctx, v[i]->name);
	put_all(v, n);
	return rc;
}

struct job *jobs_get(struct jobs *j, const char *pod_id, const char *name)
{
	pthread_mutex_lock(&j->mu);
	struct job *jb = job_get(find_job(find_pod(j, pod_id, false), name));
	pthread_mutex_unlock(&j->mu);
	return jb;
}

struct job *jobs_latest(struct jobs *j, const char *pod_id)
{
	size_t n;
	struct job **v = all_jobs(j, pod_id, &n);
	struct job *best = NULL;
	unsigned long long best_seq = 0;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->mu);
		unsigned long long seq =
		    v[i]->state == JOB_WAITING ? 0 : v[i]->seq;
		pthread_mutex_unlock(&v[i]->mu);
		if (seq > best_seq) {
			best_seq = seq;
			best = v[i];
		}
	}
	job_get(best);
	put_all(v, n);
	return best;
}

bool jobs_pod_has(struct jobs *j, const char *pod_id)
{
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = find_pod(j, pod_id, false);
	bool has = p && p->n;
	pthread_mutex_unlock(&j->mu);
	return has;
}

bool jobs_busy(struct jobs *j, const char *pod_id, time_t since)
{
	size_t n;
	struct job **v = all_jobs(j, pod_id, &n);
	bool busy = false;
	for (size_t i = 0; i < n && !busy; i++) {
		pthread_mutex_lock(&v[i]->mu);
		busy = v[i]->state == JOB_RUNNING ||
		       (ended(v[i]->state) && v[i]->ended > since);
		pthread_mutex_unlock(&v[i]->mu);
	}
	put_all(v, n);
	return busy;
}

/* Ends the job now if it runs: what its command printed is kept, and
 * unless the command ended already, the job is lost. */
static void end_now(struct job *jb)
{
	pthread_mutex_lock(&jb->mu);
	struct ssh_cmd *c =
	    jb->state == JOB_RUNNING && jb->cmd ? ssh_cmd_get(jb->cmd) : NULL;
	pthread_mutex_unlock(&jb->mu);
	finish(jb, !c || !ssh_cmd_done(c));
	ssh_cmd_put(c);
}

/* The pod's running jobs end as lost, now. */
static void end_pod_jobs(struct jobs *j, const char *pod_id)
{
	size_t n;
	struct job **v = all_jobs(j, pod_id, &n);
	for (size_t i = 0; i < n; i++)
		end_now(v[i]);
	put_all(v, n);
}

void jobs_pod_gone(struct jobs *j, const char *pod_id)
{
	if (j->runs)
		ssh_pool_forget(j->runs->pool, pod_id);
	end_pod_jobs(j, pod_id);
}

void jobs_prune(struct jobs *j, bool (*listed)(void *arg, const char *pod_id),
		void *arg)
{
	if (j->runs)
		ssh_pool_prune(j->runs->pool, listed, arg);
	pthread_mutex_lock(&j->mu);
	char **gone = xmalloc((j->npods + 1) * sizeof *gone);
	size_t n = 0;
	for (size_t i = 0; i < j->npods; i++) {
		struct pod_jobs *p = &j->pods[i];
		bool running = false;
		for (size_t k = 0; k < p->n && !running; k++) {
			pthread_mutex_lock(&p->v[k]->mu);
			running = p->v[k]->state == JOB_RUNNING;
			pthread_mutex_unlock(&p->v[k]->mu);
		}
		if (running && !listed(arg, p->pod_id))
			gone[n++] = xstrdup(p->pod_id);
	}
	pthread_mutex_unlock(&j->mu);
	for (size_t i = 0; i < n; i++) {
		end_pod_jobs(j, gone[i]);
		free(gone[i]);
	}
	free(gone);
}

int jobs_remove(struct jobs *j, const char *pod_id, const char *name)
{
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = find_pod(j, pod_id, false);
	struct job *jb = find_job(p, name);
	if (jb)
		take_job(p, jb);
	pthread_mutex_unlock(&j->mu);
	if (!jb)
		return -ENOENT;
	if (job_state(jb) == JOB_RUNNING)
		job_signal(j, jb, "KILL");
	pthread_mutex_lock(&jb->mu);
	jb->removed = true;
	pthread_mutex_unlock(&jb->mu);
	stop_watching_cmd(jb);
	end_now(jb); /* readers: it ends here */
	pthread_mutex_lock(&jb->mu);
	bool waited = jb->state == JOB_WAITING && !jb->starting;
	if (waited) { /* never to start now */
		jb->state = JOB_LOST;
		jb->exit_text = xstrdup(LOST_TEXT);
		jb->ended = time(NULL);
	}
	pthread_mutex_unlock(&jb->mu);
	if (waited)
		notify(jb);
	pthread_mutex_lock(&jb->meta_mu); /* no meta write under way */
	remove_record(jb);
	pthread_mutex_unlock(&jb->meta_mu);
	job_put(jb);
	return 0;
}
