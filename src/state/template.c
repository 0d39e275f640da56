/* template.c — see template.h. Every value is checked at parse time, so a
 * template that parsed never fails mkdir for its syntax. */
#include "template.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "log.h"

enum kind {
	K_STR,
	K_INT,
	K_PRICE,
	K_BOOL,
	K_LIST,
	K_SECURITY,
	K_OFFER,
	K_DURATION,
	K_USD,
	K_COLLECT
};

static const struct {
	const char *key;
	enum kind kind;
} keys[] = {
    {"gpu_type", K_STR},      {"gpu_count", K_INT},
    {"socket", K_STR},	      {"regions", K_LIST},
    {"provider", K_STR},      {"data_center", K_STR},
    {"security", K_SECURITY}, {"max_price", K_PRICE},
    {"image", K_STR},	      {"disk_size", K_INT},
    {"vcpus", K_INT},	      {"memory", K_INT},
    {"spot", K_BOOL},	      {"custom_template_id", K_STR},
    {"team_id", K_STR},	      {"max_pods", K_INT},
    {"prepaid", K_BOOL},      {"offer", K_OFFER},
    {"deadline", K_DURATION}, {"idle", K_DURATION},
    {"max_cost", K_USD},      {"collect", K_COLLECT},
};

/* The account's keys (disks.h, budget.h), each checked as the key whose
 * kind of value it takes; disk.* and max_hourly are top-level keys only. */
static const struct {
	const char *key, *like;
} account_keys[] = {
    {"disks", "regions"},
    {"max_hourly", "max_price"},
    {"disk.size", "disk_size"},
    {"disk.offer", "gpu_type"},
    {"disk.data_center", "gpu_type"},
    {"disk.country", "gpu_type"},
};

/* Keys that only the top of the template takes (not a [section]). */
static bool top_only(const char *key)
{
	return !strcmp(key, "max_hourly") || !strncmp(key, "disk.", 5);
}

struct parse_ctx {
	struct template *t;
	struct buf *err;
	bool failed;
};

static bool env_name_ok(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool parse_long(const char *v, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (end == v || *end || errno || n <= 0 || n > 1000000)
		return false;
	*out = n;
	return true;
}

static bool parse_price(const char *v, double *out)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v || *end || !isfinite(d) || d < 0)
		return false;
	*out = d;
	return true;
}

double parse_duration(const char *v)
{
	if (*v == '+')
		v++;
	if (!(*v >= '0' && *v <= '9') && *v != '.')
		return -1;
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (end == v || errno || !isfinite(d) || d < 0 || !*end || end[1])
		return -1;
	switch (*end) {
	case 's':
		return d;
	case 'm':
		return d * 60;
	case 'h':
		return d * 3600;
	case 'd':
		return d * 86400;
	default:
		return -1;
	}
}

/* "<type>/<offer>": two names as the tree spells them. */
static bool offer_ref_ok(const char *v)
{
	const char *slash = strchr(v, '/');
	if (!slash || strchr(slash + 1, '/') || slash == v)
		return false;
	char *type = xstrndup(v, (size_t)(slash - v));
	bool ok = safe_name(type) && *type != '.' && safe_name(slash + 1) &&
		  slash[1] != '.';
	free(type);
	return ok;
}

/* A glob fnmatch would read differently from what its writer meant: an
 * unclosed bracket or a trailing backslash. */
static bool glob_ok(const char *g)
{
	for (const char *p = g; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				return false;
			p++;
		} else if (*p == '[') {
			const char *q = p + 1;
			if (*q == '!' || *q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']')
				q++;
			if (!*q)
				return false;
			p = q;
		}
	}
	return *g != '\0';
}

static const char *check_value(const char *key, const char *value)
{
	long l;
	double d;
	for (size_t i = 0; i < sizeof account_keys / sizeof *account_keys; i++)
		if (!strcmp(account_keys[i].key, key))
			key = account_keys[i].like;
	if (!strncmp(key, "env.", 4))
		return env_name_ok(key + 4) ? NULL
					    : "bad environment variable name";
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		if (strcmp(keys[i].key, key))
			continue;
		switch (keys[i].kind) {
		case K_INT:
			return parse_long(value, &l) ? NULL
						     : "not a positive number";
		case K_PRICE:
			return parse_price(value, &d) ? NULL
						      : "not a price in USD";
		case K_BOOL:
			return !strcmp(value, "true") || !strcmp(value, "false")
				   ? NULL
				   : "not true or false";
		case K_OFFER:
			return offer_ref_ok(value) ? NULL
						   : "not <gpu type>/<offer> "
						     "as in availability/";
		case K_DURATION:
			return parse_duration(value) >= 0
				   ? NULL
				   : "not a duration such as 45s, 90m, 2h or "
				     "2d";
		case K_USD:
			return parse_price(value, &d) ? NULL
						      : "not an amount in USD";
		case K_SECURITY:
			return !strcmp(value, "secure_cloud") ||
				       !strcmp(value, "community_cloud")
				   ? NULL
				   : "not secure_cloud or community_cloud";
		case K_COLLECT: {
			struct strlist l;
			struct buf why;
			buf_init(&why);
			int rc = collect_parse(value, strlen(value), &l, &why);
			buf_free(&why);
			strlist_free(&l);
			return rc ? "an absolute path or a '..' component "
				    "(paths "
				    "relative to the pod's home) in"
				  : NULL;
		}
		case K_LIST:
		case K_STR:
			return *value ? NULL : "empty value";
		}
	}
	return "unknown key";
}

static int on_entry(void *user, const char *section, const char *name,
		    const char *value)
{
	struct parse_ctx *ctx = user;
	if (ctx->failed)
		return 0;
	const char *why = NULL;
	if (*section && !glob_ok(section))
		why = "bad glob in section name";
	else if (*section && top_only(name))
		why = "a top-level key, not for a section:";
	else
		why = check_value(name, value);
	if (why) {
		buf_printf(ctx->err, "%s '%s'%s%s%s", why, name,
			   *section ? " in [" : "", section,
			   *section ? "]" : "");
		ctx->failed = true;
		return 0;
	}
	struct template *t = ctx->t;
	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	t->v[t->n].section = xstrdup(section);
	t->v[t->n].key = xstrdup(name);
	t->v[t->n].value = xstrdup(value);
	t->n++;
	return 1;
}

/* What inih should see: no leading blanks (inih would take an indented
 * `key = value` for the continuation of the previous value) and no
 * trailing ` # comment`. Lines keep their numbers. */
static char *normalize(const char *text)
{
	struct buf b;
	buf_init(&b);
	while (*text) {
		size_t len = strcspn(text, "\n");
		const char *line = text;
		text += len + (text[len] == '\n');
		while (len && (*line == ' ' || *line == '\t'))
			line++, len--;
		size_t keep = len;
		if (len && *line != '#' && *line != ';')
			for (size_t i = 1; i < len; i++)
				if (line[i] == '#' && (line[i - 1] == ' ' ||
						       line[i - 1] == '\t')) {
					keep = i;
					break;
				}
		buf_add(&b, line, keep);
		buf_addc(&b, '\n');
	}
	return buf_steal(&b);
}

int template_parse(const char *text, struct template *out, struct buf *err)
{
	memset(out, 0, sizeof *out);
	if (strlen(text) > TEMPLATE_MAX_SIZE) {
		buf_printf(err, "template larger than %d bytes",
			   TEMPLATE_MAX_SIZE);
		return -EINVAL;
	}
	struct buf reason;
	buf_init(&reason);
	struct parse_ctx ctx = {out, &reason, false};
	int n = 1;
	for (const char *p = text; *p; n++) {
		size_t len = strcspn(p, "\n");
		if (len >= 200) { /* inih would cut it in two */
			buf_printf(err, "line %d: longer than 199 characters",
				   n);
			return -EINVAL;
		}
		p += len + (p[len] == '\n');
	}
	char *plain = normalize(text);
	int line = ini_parse_string(plain, on_entry, &ctx);
	free(plain);
	if (line != 0) {
		buf_printf(err, "line %d: %s", line,
			   reason.len ? reason.data
				      : "not a 'key = value' line or a "
					"[section]");
		buf_free(&reason);
		template_free(out);
		return -EINVAL;
	}
	buf_free(&reason);
	return 0;
}

int template_check_lines(const char *text, size_t len, size_t from,
			 struct buf *err)
{
	if (memchr(text, '\0', len)) {
		buf_adds(err, "the template has a NUL byte");
		return -EINVAL;
	}
	int n = 1;
	for (size_t at = 0; at < len; n++) {
		const char *nl = memchr(text + at, '\n', len - at);
		if (!nl)
			break; /* the last line is not complete yet */
		size_t end = (size_t)(nl - text);
		if (end + 1 > from) {
			char *line = xstrndup(text + at, end - at + 1);
			struct template t;
			struct buf why;
			buf_init(&why);
			int rc = template_parse(line, &t, &why);
			free(line);
			if (rc) {
				/* "line 1: reason", from the one line's parse.
				 */
				const char *r = strchr(why.data, ':');
				buf_printf(err, "line %d%s", n,
					   r ? r : ": not valid");
				buf_free(&why);
				return rc;
			}
			template_free(&t);
			buf_free(&why);
		}
		at = end + 1;
	}
	return 0;
}

void template_free(struct template *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].section);
		free(t->v[i].key);
		free(t->v[i].value);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = xstrdup(v);
}

static void apply(struct pod_spec *s, const char *key, const char *value)
{
	if (!strncmp(key, "env.", 4)) {
		for (size_t i = 0; i < s->n_env; i++)
			if (!strcmp(s->env[i].key, key + 4)) {
				set_str(&s->env[i].value, value);
				return;
			}
		s->env = xrealloc(s->env, (s->n_env + 1) * sizeof *s->env);
		s->env[s->n_env].key = xstrdup(key + 4);
		s->env[s->n_env].value = xstrdup(value);
		s->n_env++;
		return;
	}
	struct {
		const char *key;
		char **slot;
	} strs[] = {
	    {"gpu_type", &s->gpu_type},
	    {"socket", &s->socket},
	    {"provider", &s->provider},
	    {"data_center", &s->data_center},
	    {"security", &s->security},
	    {"image", &s->image},
	    {"custom_template_id", &s->custom_template_id},
	    {"team_id", &s->team_id},
	    {"offer", &s->offer},
	    {"collect", &s->collect},
	};
	for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
		if (!strcmp(key, strs[i].key)) {
			set_str(strs[i].slot, value);
			return;
		}
	struct {
		const char *key;
		long *slot;
	} ints[] = {
	    {"gpu_count", &s->gpu_count}, {"disk_size", &s->disk_size},
	    {"vcpus", &s->vcpus},	  {"memory", &s->memory},
	    {"max_pods", &s->max_pods},
	};
	for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
		if (!strcmp(key, ints[i].key)) {
			parse_long(value, ints[i].slot);
			return;
		}
	if (!strcmp(key, "max_price")) {
		parse_price(value, &s->max_price);
	} else if (!strcmp(key, "max_cost")) {
		parse_price(value, &s->max_cost);
	} else if (!strcmp(key, "deadline")) {
		s->deadline = parse_duration(value);
	} else if (!strcmp(key, "idle")) {
		s->idle = parse_duration(value);
	} else if (!strcmp(key, "spot")) {
		s->spot = !strcmp(value, "true");
	} else if (!strcmp(key, "prepaid")) {
		s->prepaid = !strcmp(value, "true");
	} else if (!strcmp(key, "regions")) {
		strlist_free(&s->regions);
		char *copy = xstrdup(value), *save = NULL;
		for (char *tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ' || *tok == '\t')
				tok++;
			size_t len = strlen(tok);
			while (len &&
			       (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
				tok[--len] = '\0';
			if (!len)
				continue;
			s->regions.v =
			    xrealloc(s->regions.v,
				     (s->regions.n + 1) * sizeof *s->regions.v);
			s->regions.v[s->regions.n++] = xstrdup(tok);
		}
		free(copy);
	}
}

void template_resolve(const struct template *t, const char *pod_name,
		      struct pod_spec *out)
{
	memset(out, 0, sizeof *out);
	out->max_price = -1;
	out->spot = -1;
	out->prepaid = -1;
	out->deadline = out->idle = out->max_cost = -1;
	out->max_pods = TEMPLATE_DEFAULT_MAX_PODS;
	for (size_t i = 0; i < t->n; i++) {
		const char *sec = t->v[i].section;
		if (*sec && fnmatch(sec, pod_name, 0) != 0)
			continue;
		apply(out, t->v[i].key, t->v[i].value);
	}
}

void pod_spec_free(struct pod_spec *s)
{
	free(s->gpu_type);
	free(s->socket);
	free(s->provider);
	free(s->data_center);
	free(s->security);
	free(s->image);
	free(s->custom_template_id);
	free(s->team_id);
	free(s->offer);
	free(s->collect);
	free(s->invalid);
	strlist_free(&s->regions);
	for (size_t i = 0; i < s->n_env; i++) {
		free(s->env[i].key);
		free(s->env[i].value);
	}
	free(s->env);
	memset(s, 0, sizeof *s);
}

/* ---- the store ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 &&
	       b.len <= TEMPLATE_MAX_SIZE)
		buf_add(&b, chunk, n);
	fclose(f);
	return buf_steal(&b);
}

/* Forgets what was read: an empty template, and what config shows. */
static void forget(struct template_store *s)
{
	template_free(&s->current);
	free(s->text);
	free(s->invalid);
	s->text = s->invalid = NULL;
}

static void remember_stat(struct template_store *s)
{
	struct stat st;
	if (stat(s->path, &st) == 0) {
		s->seen = st.st_mtim;
		s->seen_size = st.st_size;
		s->seen_ino = st.st_ino;
	} else {
		memset(&s->seen, 0, sizeof s->seen);
		s->seen_size = 0;
		s->seen_ino = 0;
	}
}

/* Reads the file again when it changed on disk (or went away); s->mu held.
 * Local file I/O only. */
static void sync_locked(struct template_store *s)
{
	struct stat st;
	if (stat(s->path, &st) != 0) {
		if (s->seen_ino || s->text) {
			forget(s);
			remember_stat(s);
		}
		return;
	}
	if (st.st_ino == s->seen_ino && st.st_size == s->seen_size &&
	    st.st_mtim.tv_sec == s->seen.tv_sec &&
	    st.st_mtim.tv_nsec == s->seen.tv_nsec)
		return;
	char *text = read_file(s->path);
	remember_stat(s);
	if (!text)
		return;
	forget(s);
	s->text = text;
	struct buf err;
	buf_init(&err);
	if (template_parse(text, &s->current, &err) != 0) {
		struct buf why;
		buf_init(&why);
		buf_printf(&why, "the template file %s is bad (%s)", s->path,
			   err.data);
		s->invalid = buf_steal(&why);
		plog("config", s->path,
		     "%s; mkdir refuses until a good one is written", err.data);
	}
	buf_free(&err);
}

void template_store_init(struct template_store *s, const char *path)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	s->path = xstrdup(path);
	sync_locked(s); /* nobody else sees s yet */
}

void template_store_destroy(struct template_store *s)
{
	forget(s);
	free(s->path);
	pthread_mutex_destroy(&s->mu);
}

/* atomic_write_file: a crash leaves the old template or the new one,
 * never half of one. */
static int save_atomically(const char *path, const char *text, size_t len)
{
	/* The directories may not exist yet ($XDG_CONFIG_HOME/primefs). */
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : NULL;
	int fd = mkdir_p(AT_FDCWD, !dir ? "." : *dir ? dir : "/", true);
	free(dir);
	int rc =
	    fd < 0 ? fd
		   : atomic_write_file(fd, slash ? slash + 1 : path, text, len);
	if (fd >= 0)
		close(fd);
	if (rc)
		plog("config", path, "cannot save the template: %s",
		     strerror(-rc));
	return rc;
}

int template_store_replace(struct template_store *s, const char *text,
			   size_t len)
{
	if (memchr(text, '\0', len)) {
		plog("config", s->path, "refused: the template has a NUL byte");
		return -EINVAL;
	}
	char *copy = xstrndup(text, len);
	struct template t;
	struct buf err;
	buf_init(&err);
	int rc = template_parse(copy, &t, &err);
	if (rc) {
		plog("config", s->path, "refused, the old template is kept: %s",
		     err.data);
	} else {
		pthread_mutex_lock(&s->mu);
		rc = save_atomically(s->path, copy, len);
		if (rc == 0) {
			forget(s);
			s->current = t;
			s->text = copy;
			copy = NULL;
			remember_stat(s);
		}
		pthread_mutex_unlock(&s->mu);
		if (rc == 0)
			plog("config", s->path, "template replaced (%zu keys)",
			     t.n);
		else
			template_free(&t);
	}
	buf_free(&err);
	free(copy);
	return rc;
}

void template_store_resolve(struct template_store *s, const char *pod_name,
			    struct pod_spec *out)
{
	pthread_mutex_lock(&s->mu);
	sync_locked(s);
	template_resolve(&s->current, pod_name, out);
	if (s->invalid)
		out->invalid = xstrdup(s->invalid);
	pthread_mutex_unlock(&s->mu);
}

void template_store_text(struct template_store *s, struct buf *out)
{
	pthread_mutex_lock(&s->mu);
	sync_locked(s);
	if (s->text)
		buf_adds(out, s->text);
	pthread_mutex_unlock(&s->mu);
}

bool template_store_get(struct template_store *s, const char *pod_name,
			const char *key, struct buf *out)
{
	bool found = false;
	pthread_mutex_lock(&s->mu);
	sync_locked(s);
	const struct template *t = &s->current;
	for (size_t i = 0; i < t->n; i++) {
		const char *sec = t->v[i].section;
		if (strcmp(t->v[i].key, key) ||
		    (*sec && (!pod_name || fnmatch(sec, pod_name, 0) != 0)))
			continue;
		buf_reset(out);
		buf_adds(out, t->v[i].value);
		found = true;
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}
