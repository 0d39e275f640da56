/* jobs_store.c — a job's record on local disk (jobs.h): under the jobs
 * directory, <pod_id>/<job>/ holds `cmd` (the script as sent), `out` (its
 * output, written by the SSH layer as it arrives) and `meta` (JSON: state,
 * times, exit text, whether the output was dropped), replaced atomically.
 * Records are loaded at mount (a job that was running is now `lost`), and
 * the outputs of ended jobs are dropped, oldest first, to keep them all
 * under the cap (jobs_keep). Files are opened relative to the directory's
 * fd, following no link (statedir.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs_int.h"
#include "log.h"
#include "statedir.h"

const char *jobs_state_word(enum job_state s)
{
	static const char *w[] = {"waiting", "running", "exited", "lost"};
	return w[s];
}

bool jobs_state_of_word(const char *w, enum job_state *s)
{
	for (int i = JOB_WAITING; i <= JOB_LOST; i++)
		if (!strcmp(w, jobs_state_word(i))) {
			*s = i;
			return true;
		}
	return false;
}

void jobs_file_path(const struct job *jb, const char *file, struct buf *b)
{
	buf_reset(b);
	buf_printf(b, "%s/%s", jb->dir, file);
}

/* One of the record's files (NULL: its directory), following no link:
 * fd or -errno. */
int jobs_file_open(const struct job *jb, const char *file, int flags)
{
	struct buf p;
	buf_init(&p);
	buf_printf(&p, "%s%s%s", jb->rel, file ? "/" : "", file ? file : "");
	int fd = openat_nofollow(jb->root->fd, p.data, flags, 0600);
	buf_free(&p);
	return fd;
}

void jobs_root_put(struct jobs_root *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		close(r->fd);
		free(r);
	}
}

/* --- records on disk ------------------------------------------------ */

/* Writes the job's meta as it is now (atomic_write_file). Writers take
 * turns, each writing the state as of its turn, so the last one wins with
 * the latest state. 0, or -errno (logged) with the meta as it was. */
int jobs_write_meta(struct job *jb)
{
	pthread_mutex_lock(&jb->meta_mu);
	json_object *o = json_object_new_object();
	pthread_mutex_lock(&jb->mu);
	bool removed = jb->removed;
	json_object_object_add(o, "pod_id", json_object_new_string(jb->pod_id));
	json_object_object_add(o, "name", json_object_new_string(jb->name));
	json_object_object_add(
	    o, "state", json_object_new_string(jobs_state_word(jb->state)));
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
		int dfd = jobs_file_open(jb, NULL, O_RDONLY | O_DIRECTORY);
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
int jobs_write_file(const struct job *jb, const char *file, const char *data,
		    size_t len)
{
	int fd = jobs_file_open(jb, file, O_WRONLY | O_CREAT | O_TRUNC);
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
void jobs_remove_record(const struct job *jb)
{
	int fd = jobs_file_open(jb, NULL, O_RDONLY | O_DIRECTORY);
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
int jobs_make_record(struct job *jb)
{
	int fd = mkdir_p(jb->root->fd, jb->pod_id, false);
	int rc = fd < 0 ? fd : mkdirat(fd, jb->name, 0700) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (!rc)
		rc = jobs_write_file(jb, "out", "", 0);
	return rc;
}

/* --- the cap -------------------------------------------------------- */

/* The size of the job's `out` (0 if it is not a file). */
unsigned long long jobs_out_size(const struct job *jb)
{
	int fd = jobs_file_open(jb, "out", O_PATH);
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
void jobs_enforce_cap(struct jobs *j)
{
	pthread_mutex_lock(&j->cap_mu);
	size_t n;
	struct job **v = jobs_all(j, NULL, &n);
	unsigned long long total = 0;
	struct job **cand = xmalloc((n + 1) * sizeof *cand);
	size_t nc = 0;
	struct buf p;
	buf_init(&p);
	for (size_t i = 0; i < n; i++) {
		struct job *jb = v[i];
		pthread_mutex_lock(&jb->mu);
		bool candidate =
		    job_over(jb->state) && !jb->dropped && !jb->removed;
		pthread_mutex_unlock(&jb->mu);
		/* The file, also while running: what is on disk now (the
		 * SSH layer writes before it tells, so jb->size may lag). */
		total += jobs_out_size(jb);
		if (candidate)
			cand[nc++] = jb;
	}
	if (total <= j->keep) {
		buf_free(&p);
		free(cand);
		jobs_put_all(v, n);
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
		jobs_file_path(jb, "out", &p);
		unsigned long long size = jobs_out_size(jb);
		/* Emptied, nothing written in its place: `out` holds the
		 * job's bytes or none (meta's `dropped` and log say so). */
		int fd = jobs_file_open(jb, "out", O_WRONLY | O_TRUNC);
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
		jobs_write_meta(jb);
		plog("jobs", p.data,
		     "output dropped (%llu bytes), the oldest, to keep jobs "
		     "under %s MiB (jobs_keep)",
		     size, cap.data);
	}
	buf_free(&cap);
	buf_free(&p);
	free(cand);
	jobs_put_all(v, n);
	pthread_mutex_unlock(&j->cap_mu);
}

/* --- loading at mount ---------------------------------------------- */

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
	struct job *jb = jobs_alloc_job(j, pod_id, name);
	json_object *o = NULL;
	int fd = jobs_file_open(jb, "meta", O_RDONLY);
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
	else if (o &&
		 (!(s = get_str(o, "state")) || !jobs_state_of_word(s, &st)))
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
		} else if (job_over(st) && !(e && exit_text_ok(e))) {
			st = JOB_LOST;
			e = LOST_TEXT;
		}
		jb->state = st;
		if (job_over(st))
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
bool jobs_is_dir(DIR *dir, const char *name)
{
	struct stat st;
	return fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

void jobs_load_pod(struct jobs *j, const char *pod_id)
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
		unsigned long num = jobs_name_num(name);
		if (num > highest)
			highest = num; /* never reused, even if unreadable */
		if (!num && !jobs_name_ok(name)) {
			plog("jobs", d.data,
			     "skipped a record with a bad name");
			continue;
		}
		if (!jobs_is_dir(dir, name)) {
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
			jobs_write_meta(jb);
		}
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = jb;
	}
	closedir(dir);
	buf_free(&d);
	if (v)
		qsort(v, n, sizeof *v, load_order);
	pthread_mutex_lock(&j->mu);
	struct pod_jobs *p = jobs_find_pod(j, pod_id, true);
	for (size_t i = 0; i < n; i++) {
		if (v[i]->started)
			v[i]->seq = ++j->seq;
		jobs_add_job(p, v[i]);
	}
	if (highest >= p->next_num)
		p->next_num = highest + 1;
	pthread_mutex_unlock(&j->mu);
	free(v);
}
