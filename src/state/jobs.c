/* jobs.c — see jobs.h: live jobs. The store's lists of jobs per pod,
 * a job's life (waiting, claimed by a close of `run` or `cmd`, started,
 * running, ended or lost), its output as readers and waiters see it, its
 * watchers and signals; records on disk are jobs_store.c's (jobs_int.h).
 * The store's mutex guards the per-pod lists (small structs, no output);
 * each job's own mutex guards its state, times, exit text, command and
 * watchers. A job's output lives only in its `out` file: readers pread
 * it, and its size is known without reading it. */
#include "jobs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs_int.h"
#include "log.h"
#include "runs.h"
#include "ssh.h"

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
bool jobs_pod_id_ok(const char *id)
{
	return id && safe_name(id) && id[0] != '.';
}

/* A named job's name: the pod name rules, and neither a number nor
 * "latest" (jobs/latest links to the newest job). */
bool jobs_name_ok(const char *name)
{
	return name && safe_name(name) && name[0] != '.' && !all_digits(name) &&
	       strcmp(name, "latest") != 0;
}

/* A numbered job's name: 1, 2, ... without leading zeros. */
unsigned long jobs_name_num(const char *name)
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

/* --- the job object ------------------------------------------------- */

struct job *jobs_alloc_job(struct jobs *j, const char *pod_id, const char *name)
{
	struct job *jb = xcalloc(1, sizeof *jb);
	atomic_init(&jb->refs, 1);
	jb->store = j;
	jb->pod_id = xstrdup(pod_id);
	jb->name = xstrdup(name);
	jb->num = jobs_name_num(name);
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
	watchers_init(&jb->watchers);
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
	watchers_free(&jb->watchers);
	pthread_mutex_destroy(&jb->mu);
	pthread_mutex_destroy(&jb->meta_mu);
	pthread_cond_destroy(&jb->cond);
	free(jb->exit_text);
	free(jb->pod_id);
	free(jb->name);
	free(jb->dir);
	free(jb->rel);
	jobs_root_put(jb->root);
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

bool job_over(enum job_state s)
{
	return s == JOB_EXITED || s == JOB_LOST;
}

/* --- the store's lists ---------------------------------------------- */

/* With j->mu. */
struct pod_jobs *jobs_find_pod(struct jobs *j, const char *pod_id, bool add)
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
void jobs_add_job(struct pod_jobs *p, struct job *jb)
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
 * jobs_put_all. */
struct job **jobs_all(struct jobs *j, const char *pod_id, size_t *n)
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

void jobs_put_all(struct job **v, size_t n)
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
	watchers_notify(&jb->watchers, &jb->mu, &jb->cond);
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
	pthread_mutex_lock(&jb->mu);
	int id = watchers_add(&jb->watchers, fn, arg);
	pthread_mutex_unlock(&jb->mu);
	return id;
}

void job_unwatch(struct job *jb, int id)
{
	pthread_mutex_lock(&jb->mu);
	watchers_remove(&jb->watchers, id, &jb->mu, &jb->cond);
	pthread_mutex_unlock(&jb->mu);
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
	jobs_write_meta(jb);
	notify(jb);
	activity(store, jb->pod_id);
	if (store)
		jobs_enforce_cap(store);
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
	jobs_file_path(jb, "cmd", &p);
	int rc = jobs_write_file(jb, "cmd", script, len);
	int fd = -1;
	if (!rc) {
		jobs_file_path(jb, "out", &p);
		fd = jobs_file_open(jb, "out", O_RDWR | O_CREAT | O_TRUNC);
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
	if (!jb->claimed) /* a claimed job is the latest since its claim */
		jb->seq = seq;
	jb->claimed = false;
	jb->size = 0;
	pthread_mutex_unlock(&jb->mu);
	jobs_write_meta(jb);
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
		job_signal(j, jb, "KILL", NULL, NULL);
		end_now(jb);
	}
	return 0;
}

int jobs_claim_new(struct jobs *j, const char *pod_id, struct job **out)
{
	*out = NULL;
	if (!jobs_pod_id_ok(pod_id))
		return -ENOENT;
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = jobs_find_pod(j, pod_id, true);
	unsigned long num = p->next_num++;
	pthread_mutex_unlock(&j->mu);
	char name[32];
	struct job *jb = NULL;
	int rc = -EEXIST;
	/* A number whose directory is somehow there already is skipped. */
	for (int tries = 0; rc == -EEXIST && tries < 100; tries++) {
		snprintf(name, sizeof name, "%lu", num);
		jb = jobs_alloc_job(j, pod_id, name);
		rc = jobs_make_record(jb);
		if (rc == -EEXIST) {
			job_put(jb);
			jb = NULL;
			pthread_mutex_lock(&j->mu);
			p = jobs_find_pod(j, pod_id, true);
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
	if ((rc = jobs_write_meta(jb))) { /* logged */
		jobs_remove_record(jb);
		job_put(jb);
		return rc;
	}
	pthread_mutex_lock(&j->mu);
	jb->claimed = true;
	jb->seq = ++j->seq;
	jobs_add_job(jobs_find_pod(j, pod_id, true), job_get(jb));
	pthread_mutex_unlock(&j->mu);
	*out = jb;
	return 0;
}

int jobs_claim(struct jobs *j, struct job *jb)
{
	pthread_mutex_lock(&j->mu);
	unsigned long long seq = ++j->seq;
	pthread_mutex_unlock(&j->mu);
	pthread_mutex_lock(&jb->mu);
	int rc = jb->state != JOB_WAITING || jb->starting || jb->removed
		     ? -EBUSY
		     : 0;
	if (!rc && !jb->claimed) {
		jb->claimed = true;
		jb->seq = seq;
	}
	pthread_mutex_unlock(&jb->mu);
	return rc;
}

void jobs_abandon(struct jobs *j, struct job *jb)
{
	(void)j;
	pthread_mutex_lock(&jb->mu);
	bool end = jb->state == JOB_WAITING && !jb->starting;
	if (end) {
		jb->state = JOB_LOST;
		jb->claimed = false;
		free(jb->exit_text);
		jb->exit_text = xstrdup(LOST_TEXT);
		jb->started = jb->ended = time(NULL);
	}
	pthread_mutex_unlock(&jb->mu);
	if (end) {
		jobs_write_meta(jb);
		notify(jb);
	}
}

bool job_pending(struct job *jb)
{
	pthread_mutex_lock(&jb->mu);
	bool p = jb->state == JOB_WAITING && (jb->claimed || jb->starting);
	pthread_mutex_unlock(&jb->mu);
	return p;
}

int jobs_run(struct jobs *j, const char *pod_id, const char *script, size_t len,
	     bool (*interrupted)(void *arg), void *arg, struct job **out)
{
	*out = NULL;
	if (!jobs_pod_id_ok(pod_id))
		return -ENOENT;
	if (len > RUNS_MAX_SCRIPT || !j->runs) /* logged, nothing recorded */
		return j->runs ? runs_start(j->runs, pod_id, script, len, -1,
					    interrupted, arg, NULL)
			       : -ENOTCONN;
	struct job *jb;
	int rc = jobs_claim_new(j, pod_id, &jb);
	if (rc)
		return rc;
	rc = jobs_start(j, jb, script, len, interrupted, arg);
	if (rc) { /* nothing recorded; who followed it sees it end */
		jobs_abandon(j, jb);
		pthread_mutex_lock(&j->mu);
		struct pod_jobs *p = jobs_find_pod(j, pod_id, false);
		if (p && take_job(p, jb))
			job_put(jb);
		pthread_mutex_unlock(&j->mu);
		pthread_mutex_lock(&jb->mu);
		jb->removed = true;
		pthread_mutex_unlock(&jb->mu);
		pthread_mutex_lock(&jb->meta_mu);
		jobs_remove_record(jb);
		pthread_mutex_unlock(&jb->meta_mu);
		job_put(jb);
		return rc;
	}
	/* A job that ended before it was listed here was not counted by
	 * its own finish()'s cap check: count it now. */
	if (job_over(job_state(jb)))
		jobs_enforce_cap(j);
	*out = jb;
	return 0;
}

int jobs_create(struct jobs *j, const char *pod_id, const char *name)
{
	if (!jobs_pod_id_ok(pod_id))
		return -ENOENT;
	if (!jobs_name_ok(name))
		return -EINVAL;
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = jobs_find_pod(j, pod_id, true);
	if (find_job(p, name)) {
		pthread_mutex_unlock(&j->mu);
		return -EEXIST;
	}
	struct job *jb = jobs_alloc_job(j, pod_id, name);
	jb->created = time(NULL);
	/* Listed at once, so that a second mkdir finds it; its record is
	 * made without the lock. */
	jobs_add_job(p, jb);
	job_get(jb);
	pthread_mutex_unlock(&j->mu);
	int rc = jobs_make_record(jb);
	if (rc == -EEXIST) { /* a leftover no load took: replace it */
		jobs_remove_record(jb);
		rc = jobs_make_record(jb);
	}
	if (rc)
		plog("jobs", jb->dir, "cannot make the job's record: %s",
		     strerror(-rc));
	else if ((rc = jobs_write_meta(jb))) /* logged */
		jobs_remove_record(jb);
	if (rc) {
		pthread_mutex_lock(&j->mu);
		p = jobs_find_pod(j, pod_id, false);
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
	int fd = jobs_file_open(jb, "cmd", O_RDONLY);
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
	return jobs_out_size(jb);
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
	int fd = jobs_file_open(jb, "out", O_RDONLY);
	if (fd < 0) {
		*eof = job_over(s);
		return job_over(s) ? 0 : fd;
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
	if (got == 0 && job_over(s))
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
	while (!job_over(jb->state) &&
	       !(jb->state == JOB_RUNNING && jb->size > off))
		if (pthread_cond_timedwait(&jb->cond, &jb->mu, &ts) ==
		    ETIMEDOUT)
			break;
	bool r =
	    job_over(jb->state) || (jb->state == JOB_RUNNING && jb->size > off);
	pthread_mutex_unlock(&jb->mu);
	return r;
}

bool job_wait_done(struct job *jb, double timeout)
{
	struct timespec ts;
	deadline_of(&ts, timeout);
	pthread_mutex_lock(&jb->mu);
	while (!job_over(jb->state))
		if (pthread_cond_timedwait(&jb->cond, &jb->mu, &ts) ==
		    ETIMEDOUT)
			break;
	bool r = job_over(jb->state);
	pthread_mutex_unlock(&jb->mu);
	return r;
}

bool job_exit_text(struct job *jb, struct buf *out)
{
	pthread_mutex_lock(&jb->mu);
	bool done = job_over(jb->state);
	if (done)
		buf_adds(out, jb->exit_text ? jb->exit_text : LOST_TEXT);
	pthread_mutex_unlock(&jb->mu);
	return done;
}

int job_signal(struct jobs *j, struct job *jb, const char *sig,
	       bool (*interrupted)(void *arg), void *arg)
{
	pthread_mutex_lock(&jb->mu);
	struct ssh_cmd *c =
	    jb->state == JOB_RUNNING && jb->cmd ? ssh_cmd_get(jb->cmd) : NULL;
	pthread_mutex_unlock(&jb->mu);
	int rc = c && j->runs
		     ? ssh_cmd_signal(j->runs->pool, c, sig, interrupted, arg)
		     : -ESRCH;
	ssh_cmd_put(c);
	if (rc == 0) { /* a name upper case without SIG, or a number */
		char name[sizeof jb->last_signal];
		size_t n = 0;
		if (!strncasecmp(sig, "SIG", 3))
			sig += 3;
		for (; *sig && !isspace((unsigned char)*sig) &&
		       n + 1 < sizeof name;
		     sig++)
			name[n++] = (char)toupper((unsigned char)*sig);
		name[n] = '\0';
		pthread_mutex_lock(&jb->mu);
		memcpy(jb->last_signal, name, n + 1);
		pthread_mutex_unlock(&jb->mu);
	}
	return rc;
}

void job_last_signal(struct job *jb, struct buf *out)
{
	pthread_mutex_lock(&jb->mu);
	buf_adds(out, jb->last_signal);
	pthread_mutex_unlock(&jb->mu);
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
		if (!jobs_pod_id_ok(e->d_name) ||
		    !jobs_is_dir(dir, e->d_name)) {
			plog("jobs", o->dir,
			     "skipped an entry that is no pod's directory");
			continue;
		}
		jobs_load_pod(j, e->d_name);
	}
	closedir(dir);
	jobs_enforce_cap(j);
	return j;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	size_t n;
	struct job **v = jobs_all(j, NULL, &n);
	for (size_t i = 0; i < n; i++) {
		struct job *jb = v[i];
		stop_watching_cmd(jb);
		pthread_mutex_lock(&jb->mu);
		jb->store = NULL;
		pthread_mutex_unlock(&jb->mu);
		end_now(jb); /* a running one: lost for its readers */
	}
	jobs_put_all(v, n);
	for (size_t i = 0; i < j->npods; i++) {
		for (size_t k = 0; k < j->pods[i].n; k++)
			job_put(j->pods[i].v[k]);
		free(j->pods[i].v);
		free(j->pods[i].pod_id);
	}
	free(j->pods);
	pthread_mutex_destroy(&j->mu);
	pthread_mutex_destroy(&j->cap_mu);
	jobs_root_put(j->root);
	free(j->dir);
	free(j);
}

/* Listing order: numbered jobs by number, then named ones by name. */
static int listing_order(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a;
	const struct job *y = *(struct job *const *)b;
	if (x->num != y->num) {
		if (!x->num || !y->num)
			return x->num ? -1 : 1;
		return x->num < y->num ? -1 : 1;
	}
	return strcmp(x->name, y->name);
}

int jobs_list(struct jobs *j, const char *pod_id,
	      int (*add)(void *ctx, const char *name), void *ctx)
{
	size_t n;
	struct job **v = jobs_all(j, pod_id, &n);
	qsort(v, n, sizeof *v, listing_order); /* num, name: never change */
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add(ctx, v[i]->name);
	jobs_put_all(v, n);
	return rc;
}

struct job *jobs_get(struct jobs *j, const char *pod_id, const char *name)
{
	pthread_mutex_lock(&j->mu);
	struct job *jb =
	    job_get(find_job(jobs_find_pod(j, pod_id, false), name));
	pthread_mutex_unlock(&j->mu);
	return jb;
}

struct job *jobs_latest(struct jobs *j, const char *pod_id)
{
	size_t n;
	struct job **v = jobs_all(j, pod_id, &n);
	struct job *best = NULL;
	unsigned long long best_seq = 0;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->mu);
		unsigned long long seq =
		    v[i]->state == JOB_WAITING && !v[i]->claimed ? 0
								 : v[i]->seq;
		pthread_mutex_unlock(&v[i]->mu);
		if (seq > best_seq) {
			best_seq = seq;
			best = v[i];
		}
	}
	job_get(best);
	jobs_put_all(v, n);
	return best;
}

bool jobs_pod_has(struct jobs *j, const char *pod_id)
{
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = jobs_find_pod(j, pod_id, false);
	bool has = p && p->n;
	pthread_mutex_unlock(&j->mu);
	return has;
}

bool jobs_busy(struct jobs *j, const char *pod_id, time_t since)
{
	size_t n;
	struct job **v = jobs_all(j, pod_id, &n);
	bool busy = false;
	for (size_t i = 0; i < n && !busy; i++) {
		pthread_mutex_lock(&v[i]->mu);
		busy = v[i]->state == JOB_RUNNING ||
		       (v[i]->state == JOB_WAITING && v[i]->claimed) ||
		       (job_over(v[i]->state) && v[i]->ended > since);
		pthread_mutex_unlock(&v[i]->mu);
	}
	jobs_put_all(v, n);
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
	struct job **v = jobs_all(j, pod_id, &n);
	for (size_t i = 0; i < n; i++)
		end_now(v[i]);
	jobs_put_all(v, n);
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
	struct pod_jobs *p = jobs_find_pod(j, pod_id, false);
	struct job *jb = find_job(p, name);
	if (jb)
		take_job(p, jb);
	pthread_mutex_unlock(&j->mu);
	if (!jb)
		return -ENOENT;
	if (job_state(jb) == JOB_RUNNING)
		job_signal(j, jb, "KILL", NULL, NULL);
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
	jobs_remove_record(jb);
	pthread_mutex_unlock(&jb->meta_mu);
	job_put(jb);
	return 0;
}
