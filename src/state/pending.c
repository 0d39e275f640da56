/* pending.c — see pending.h. One mutex guards the records in memory and is
 * held for memory operations only: a record is written (or removed) on
 * disk with it released, and the settle hook runs with it released. */
#include "pending.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

struct rec {
	char *name;
	char *offer;	  /* "<type>/<offer>", or NULL */
	char *id;	  /* the answer's, or NULL */
	char *answer;	  /* the answer's JSON (memory only), or NULL */
	char *unwanted;	  /* why, or NULL */
	char *settled_id; /* a listing showed it, with this id */
	bool settling;	  /* its settle hook runs */
	time_t sent;
};

struct pending {
	pthread_mutex_t mu;
	char *dir;    /* DIR/pending (for messages), or NULL */
	char *offers; /* DIR/offers (for messages), or NULL */
	int dfd, ofd; /* those, open (statedir.h), or -errno */
	struct rec **v;
	size_t n;
	void (*hook)(void *arg, const struct pending_settled *s);
	void *hook_arg;
	int hooks_running;
	pthread_cond_t cv; /* a hook ended */
};

static void rec_free(struct rec *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->offer);
	free(r->id);
	free(r->answer);
	free(r->unwanted);
	free(r->settled_id);
	free(r);
}

static struct rec *find(struct pending *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i]->name, key))
			return p->v[i];
	return NULL;
}

static void take_out(struct pending *p, struct rec *r)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i] == r) {
			memmove(p->v + i, p->v + i + 1,
				(p->n - i - 1) * sizeof *p->v);
			p->n--;
			return;
		}
}

/* A copy of what the disk keeps of r (taken under the mutex). */
static struct rec *snapshot(const struct rec *r)
{
	struct rec *c = xcalloc(1, sizeof *c);
	c->name = xstrdup(r->name);
	c->offer = r->offer ? xstrdup(r->offer) : NULL;
	c->id = r->id ? xstrdup(r->id) : NULL;
	c->unwanted = r->unwanted ? xstrdup(r->unwanted) : NULL;
	c->sent = r->sent;
	return c;
}

/* ---- the state directory ---- */

static void remove_file(int dfd, const char *name)
{
	if (dfd >= 0)
		unlinkat(dfd, name, 0);
}

static void add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* Keeps r (a snapshot) on disk: 0 or -errno (logged). */
static int save(struct pending *p, const struct rec *r)
{
	if (!p->dir)
		return 0;
	json_object *o = json_object_new_object();
	add_str(o, "name", r->name);
	json_object_object_add(o, "sent", json_object_new_int64(r->sent));
	add_str(o, "offer", r->offer);
	add_str(o, "id", r->id);
	add_str(o, "unwanted", r->unwanted);
	const char *text =
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	int rc = p->dfd < 0
		     ? p->dfd
		     : atomic_write_file(p->dfd, r->name, text, strlen(text));
	json_object_put(o);
	if (rc) {
		struct buf path;
		buf_init(&path);
		buf_printf(&path, "/pods/%s", r->name);
		plog("mkdir", path.data,
		     "cannot keep the request in the state directory (%s/%s): "
		     "%s",
		     p->dir, r->name, strerror(-rc));
		buf_free(&path);
	}
	return rc;
}

static void save_offer(struct pending *p, const char *id, const char *offer)
{
	if (p->ofd >= 0 && offer && id && safe_name(id) && id[0] != '.')
		atomic_write_file(p->ofd, id, offer, strlen(offer));
}

/* One record file; NULL (logged) when it is not one. */
static struct rec *load_one(struct pending *p, const char *file)
{
	struct buf path, text;
	buf_init(&path);
	buf_init(&text);
	buf_printf(&path, "%s/%s", p->dir, file);
	int fd = openat_nofollow(p->dfd, file, O_RDONLY, 0);
	if (fd >= 0) {
		char chunk[4096];
		ssize_t got;
		while ((got = read(fd, chunk, sizeof chunk)) > 0 &&
		       text.len < 65536)
			buf_add(&text, chunk, (size_t)got);
		close(fd);
	}
	json_object *o = text.len ? json_tokener_parse(text.data) : NULL;
	struct rec *r = NULL;
	const char *name = o ? jx_str(o, "name") : NULL;
	const char *id = o ? jx_str(o, "id") : NULL;
	if (name && !strcmp(name, file) && (!id || safe_name(id))) {
		r = xcalloc(1, sizeof *r);
		r->name = xstrdup(name);
		r->offer = jx_dup(o, "offer");
		r->id = id ? xstrdup(id) : NULL;
		r->unwanted = jx_dup(o, "unwanted");
		json_object *sent;
		if (json_object_object_get_ex(o, "sent", &sent))
			r->sent = (time_t)json_object_get_int64(sent);
	} else {
		plog("mount", path.data,
		     "skipped an unreadable record of a create request (a pod "
		     "may exist that primefs does not know it asked for)");
	}
	json_object_put(o);
	buf_free(&path);
	buf_free(&text);
	return r;
}

static void load(struct pending *p)
{
	int fd = p->dfd >= 0
		     ? openat(p->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
		     : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!safe_name(e->d_name) || e->d_name[0] == '.')
			continue;
		struct rec *r = load_one(p, e->d_name);
		if (!r)
			continue;
		p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
		p->v[p->n++] = r;
	}
	closedir(d);
	if (p->n)
		plog("mount", "/pods",
		     "%zu create request(s) still pending from before (%s): "
		     "their names stay taken until a listing settles them",
		     p->n, p->dir);
}

/* Offers kept for pods (history/ shows them too) go after a while. */
#define OFFERS_KEEP_DAYS 90

static void prune_offers(struct pending *p)
{
	int fd = p->ofd >= 0
		     ? openat(p->ofd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
		     : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	time_t old = time(NULL) - OFFERS_KEEP_DAYS * 86400;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] != '.' &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			0 &&
		    st.st_mtime < old)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* ---- the interface ---- */

struct pending *pending_new(const char *dir, int dir_fd)
{
	struct pending *p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->dfd = p->ofd = -ENOENT;
	if (dir && dir_fd >= 0) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s/pending", dir);
		p->dir = buf_steal(&b);
		buf_printf(&b, "%s/offers", dir);
		p->offers = buf_steal(&b);
		p->dfd = mkdir_p(dir_fd, "pending", false);
		p->ofd = mkdir_p(dir_fd, "offers", false);
		load(p);
		prune_offers(p);
	}
	return p;
}

void pending_free(struct pending *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		rec_free(p->v[i]);
	free(p->v);
	free(p->dir);
	free(p->offers);
	if (p->dfd >= 0)
		close(p->dfd);
	if (p->ofd >= 0)
		close(p->ofd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

void pending_set_hook(struct pending *p,
		      void (*fn)(void *arg, const struct pending_settled *s),
		      void *arg)
{
	pthread_mutex_lock(&p->mu);
	/* A hook being replaced (at unmount: by none) has ended on return. */
	while (p->hooks_running)
		pthread_cond_wait(&p->cv, &p->mu);
	p->hook = fn;
	p->hook_arg = arg;
	pthread_mutex_unlock(&p->mu);
}

int pending_add(struct pending *p, const char *name, const char *offer)
{
	pthread_mutex_lock(&p->mu);
	if (find(p, name)) {
		pthread_mutex_unlock(&p->mu);
		return -EEXIST;
	}
	struct rec *r = xcalloc(1, sizeof *r);
	r->name = xstrdup(name);
	r->offer = offer ? xstrdup(offer) : NULL;
	r->sent = time(NULL);
	p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
	p->v[p->n++] = r;
	struct rec *copy = snapshot(r);
	pthread_mutex_unlock(&p->mu);
	int rc = save(p, copy);
	rec_free(copy);
	if (rc) {
		pthread_mutex_lock(&p->mu);
		if ((r = find(p, name))) {
			take_out(p, r);
			rec_free(r);
		}
		pthread_mutex_unlock(&p->mu);
	}
	return rc;
}

void pending_answered(struct pending *p, const char *name,
		      const struct pod *answer)
{
	if (!answer->id)
		return;
	pthread_mutex_lock(&p->mu);
	struct rec *r = find(p, name);
	struct rec *copy = NULL;
	if (r && !r->settled_id) {
		free(r->id);
		r->id = xstrdup(answer->id);
		free(r->answer);
		r->answer = xstrdup(answer->json);
		copy = snapshot(r);
	}
	pthread_mutex_unlock(&p->mu);
	if (copy) {
		save(p, copy);
		save_offer(p, copy->id, copy->offer);
		rec_free(copy);
	}
}

bool pending_drop(struct pending *p, const char *name)
{
	pthread_mutex_lock(&p->mu);
	struct rec *r = find(p, name);
	if (r && r->settling)
		r = NULL; /* a listing showed it: settled already */
	if (r)
		take_out(p, r);
	pthread_mutex_unlock(&p->mu);
	if (r)
		remove_file(p->dfd, name);
	rec_free(r);
	return r != NULL;
}

bool pending_unwanted(struct pending *p, const char *name, const char *why)
{
	pthread_mutex_lock(&p->mu);
	struct rec *r = find(p, name);
	struct rec *copy = NULL;
	if (r && !r->id && !r->settled_id) {
		if (!r->unwanted)
			r->unwanted = xstrdup(why);
		copy = snapshot(r);
	}
	pthread_mutex_unlock(&p->mu);
	if (copy)
		save(p, copy);
	rec_free(copy);
	return copy != NULL;
}

bool pending_unwanted_id(struct pending *p, const char *id, const char *why)
{
	pthread_mutex_lock(&p->mu);
	struct rec *copy = NULL;
	for (size_t i = 0; i < p->n && !copy; i++) {
		struct rec *r = p->v[i];
		if (r->id && !strcmp(r->id, id) && !r->settled_id) {
			if (!r->unwanted)
				r->unwanted = xstrdup(why);
			copy = snapshot(r);
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (copy)
		save(p, copy);
	rec_free(copy);
	return copy != NULL;
}

void pending_gone(struct pending *p, const char *id)
{
	pthread_mutex_lock(&p->mu);
	struct rec *r = NULL;
	for (size_t i = 0; i < p->n && !r; i++)
		if (p->v[i]->id && !strcmp(p->v[i]->id, id) &&
		    !p->v[i]->settling)
			r = p->v[i];
	if (r)
		take_out(p, r);
	pthread_mutex_unlock(&p->mu);
	if (r)
		remove_file(p->dfd, r->name);
	rec_free(r);
}

enum pending_state pending_state(struct pending *p, const char *key, char **id)
{
	if (id)
		*id = NULL;
	pthread_mutex_lock(&p->mu);
	struct rec *r = find(p, key);
	enum pending_state s = PENDING_NONE;
	if (r && r->settled_id) {
		s = PENDING_SETTLED;
		if (id)
			*id = xstrdup(r->settled_id);
	} else if (r && r->id) {
		s = PENDING_ANSWERED;
		if (id)
			*id = xstrdup(r->id);
	} else if (r) {
		s = r->unwanted ? PENDING_UNWANTED : PENDING_PLACEHOLDER;
	}
	pthread_mutex_unlock(&p->mu);
	return s;
}

size_t pending_hidden(struct pending *p)
{
	size_t n = 0;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->n; i++)
		n += p->v[i]->unwanted && !p->v[i]->settled_id;
	pthread_mutex_unlock(&p->mu);
	return n;
}

size_t pending_count(struct pending *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->n;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* Under p->mu: the pod shown for r (see pending.h). */
static bool shown(const struct rec *r, struct pod *out)
{
	if (r->settled_id || r->unwanted)
		return false;
	json_object *o;
	if (r->answer) {
		o = json_tokener_parse(r->answer);
	} else {
		o = json_object_new_object();
		add_str(o, "name", r->name);
		json_object_object_add(o, "status",
				       json_object_new_string("PENDING"));
		if (r->id) /* answered before a restart */
			add_str(o, "id", r->id);
	}
	int rc = o ? pod_parse(o, false, out) : -1;
	json_object_put(o);
	if (rc != 0)
		return false;
	if (!out->id) /* a placeholder: its key is its name */
		out->id = xstrdup(r->name);
	return true;
}

bool pending_pod(struct pending *p, const char *name, struct pod *out)
{
	pthread_mutex_lock(&p->mu);
	struct rec *r = find(p, name);
	bool ok = r && shown(r, out);
	pthread_mutex_unlock(&p->mu);
	return ok;
}

/* The listed pod that stands for r, or NULL. */
static const struct pod *listing_shows(const struct pod *v, size_t n,
				       const struct rec *r)
{
	for (size_t i = 0; i < n; i++) {
		if (!v[i].id)
			continue;
		if (r->id ? !strcmp(v[i].id, r->id)
			  : v[i].name && !strcmp(v[i].name, r->name))
			return &v[i];
	}
	return NULL;
}

void pending_overlay(struct pending *p, struct pod_list *l)
{
	pthread_mutex_lock(&p->mu);
	l->v = xrealloc(l->v, (l->n + p->n + 1) * sizeof *l->v);
	size_t listed = l->n;
	for (size_t i = 0; i < p->n; i++) {
		struct rec *r = p->v[i];
		if (!r->settled_id) {
			const struct pod *got = listing_shows(l->v, listed, r);
			if (got)
				r->settled_id = xstrdup(got->id);
		}
		if (shown(r, &l->v[l->n]))
			l->n++;
	}
	pthread_mutex_unlock(&p->mu);
}

void pending_settle(struct pending *p)
{
	for (;;) {
		/* It stays found (settled, with its id) while its hook runs,
		 * so that whoever asks in between learns the pod's id. */
		pthread_mutex_lock(&p->mu);
		struct rec *r = NULL;
		for (size_t i = 0; i < p->n && !r; i++)
			if (p->v[i]->settled_id && !p->v[i]->settling)
				r = p->v[i];
		if (r)
			r->settling = true;
		void (*hook)(void *, const struct pending_settled *) = p->hook;
		void *arg = p->hook_arg;
		if (r && hook)
			p->hooks_running++;
		pthread_mutex_unlock(&p->mu);
		if (!r)
			return;
		/* The offer is kept by id before the record goes: a crash in
		 * between settles it again at the next mount. */
		save_offer(p, r->settled_id, r->offer);
		struct pending_settled s = {r->name, r->settled_id, !r->id,
					    r->unwanted};
		if (hook)
			hook(arg, &s);
		remove_file(p->dfd, r->name);
		pthread_mutex_lock(&p->mu);
		take_out(p, r);
		if (hook && !--p->hooks_running)
			pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		rec_free(r);
	}
}

bool pending_offer(struct pending *p, const char *id, struct buf *out)
{
	if (p->ofd < 0 || !safe_name(id) || id[0] == '.')
		return false;
	int fd = openat_nofollow(p->ofd, id, O_RDONLY, 0);
	if (fd < 0)
		return false;
	char text[512];
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	text[strcspn(text, "\n")] = '\0';
	if (!*text)
		return false;
	buf_adds(out, text);
	return true;
}
