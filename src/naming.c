/* naming.c — see naming.h. Names are computed from sorted copies so that
 * the API's listing order never changes which offer gets which name. */
#include "naming.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A component: sanitized, with leading dots turned into '_' so that no
 * name is hidden or a dot-dot. */
static void add_component(struct buf *b, const char *s)
{
	if (!s || !*s)
		return;
	size_t start = b->len;
	if (start)
		buf_addc(b, '-');
	size_t from = b->len;
	sanitize_into(b, s);
	for (size_t i = from; i < b->len && b->data[i] == '.'; i++)
		b->data[i] = '_';
	if (b->len == from) { /* nothing usable: drop the separator too */
		b->len = start;
		b->data[start] = '\0';
	}
}

/* A path component is at most NAME_MAX (255) bytes: a longer name would be
 * listed but could never be looked up. An offer's base name leaves room
 * for a twin's "-N" suffix. */
#define NAME_LEN_MAX 255
#define BASE_LEN_MAX (NAME_LEN_MAX - 12)

static void truncate_name(char *s, size_t max)
{
	if (strlen(s) > max)
		s[max] = '\0';
}

char *gpu_type_dir(const char *gpu_type)
{
	struct buf b;
	buf_init(&b);
	add_component(&b, gpu_type);
	if (!b.len) {
		buf_free(&b);
		return NULL;
	}
	truncate_name(b.data, NAME_LEN_MAX);
	return buf_steal(&b);
}

static const char *security_word(const char *security)
{
	if (!security)
		return "unknown";
	if (!strcmp(security, "secure_cloud"))
		return "secure";
	if (!strcmp(security, "community_cloud"))
		return "community";
	return security;
}

struct named {
	struct offer *o;
	char *base;
	char
	    *key; /* identity, for an order that does not depend on the API's */
};

static char *identity_key(const struct offer *o)
{
	struct buf b;
	buf_init(&b);
	const char *parts[] = {o->provider, o->cloud_id,    o->gpu_type,
			       o->socket,   o->data_center, o->country,
			       o->security, o->region};
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
		buf_printf(&b, "%s\x1f", parts[i] ? parts[i] : "\x01");
	num_render(&b, o->gpu_count);
	buf_printf(&b, "\x1f%d\x1f%d", o->is_spot, o->multinode);
	return buf_steal(&b);
}

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->base, y->base);
	if (!c)
		c = strcmp(x->key, y->key);
	/* Last, the whole object: compared in place rather than copied
	 * into every key (10,000 offers would double the listing). */
	return c ? c
		 : strcmp(x->o->json ? x->o->json : "",
			  y->o->json ? y->o->json : "");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends `word` to the names of a run [from, to) when `differs`. */
static void qualify(struct named *v, size_t from, size_t to,
		    const char *(*word)(const struct offer *))
{
	const char *first = word(v[from].o);
	bool differs = false;
	for (size_t i = from + 1; i < to && !differs; i++) {
		const char *w = word(v[i].o);
		differs = (first == NULL) != (w == NULL) ||
			  (first && strcmp(first, w));
	}
	if (!differs)
		return;
	for (size_t i = from; i < to; i++) {
		const char *w = word(v[i].o);
		if (!w)
			continue;
		struct buf b;
		buf_init(&b);
		buf_adds(&b, v[i].base);
		add_component(&b, w);
		free(v[i].base);
		v[i].base = buf_steal(&b);
	}
}

static const char *security_of(const struct offer *o)
{
	return security_word(o->security);
}

static const char *spot_of(const struct offer *o)
{
	return o->is_spot == 1 ? "spot" : NULL;
}

static bool in_sorted(char **names, size_t n, const char *s)
{
	return bsearch(&s, names, n, sizeof *names, cmp_str) != NULL;
}

/* A set of borrowed strings (open addressing), so that finding a free
 * "-N" for thousands of twins stays linear. */
struct strset {
	const char **slot;
	size_t cap, n;
};

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static void strset_init(struct strset *set, size_t hint)
{
	set->cap = 16;
	while (set->cap < 2 * hint)
		set->cap *= 2;
	set->slot = xcalloc(set->cap, sizeof *set->slot);
	set->n = 0;
}

static void strset_free(struct strset *set)
{
	free(set->slot);
}

static const char **strset_find(const struct strset *set, const char *s)
{
	size_t i = str_hash(s) & (set->cap - 1);
	while (set->slot[i] && strcmp(set->slot[i], s))
		i = (i + 1) & (set->cap - 1);
	return &set->slot[i];
}

static bool strset_has(const struct strset *set, const char *s)
{
	return *strset_find(set, s) != NULL;
}

static void strset_add(struct strset *set, const char *s)
{
	if (2 * (set->n + 1) > set->cap) {
		struct strset bigger;
		strset_init(&bigger, set->cap);
		for (size_t i = 0; i < set->cap; i++)
			if (set->slot[i])
				*strset_find(&bigger, set->slot[i]) =
				    set->slot[i];
		bigger.n = set->n;
		free(set->slot);
		*set = bigger;
	}
	const char **slot = strset_find(set, s);
	if (!*slot) {
		*slot = s;
		set->n++;
	}
}

void name_offers(struct offer **offers, size_t n)
{
	if (!n)
		return;
	struct named *v = xcalloc(n, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		struct offer *o = offers[i];
		struct buf b;
		buf_init(&b);
		/* A provider that is missing, empty or all unusable
		 * characters is "unknown": a name is never empty. */
		add_component(&b, o->provider);
		if (!b.len)
			add_component(&b, "unknown");
		add_component(&b, o->data_center ? o->data_center : o->country);
		add_component(&b, o->socket);
		/* A fractional count is cut to an integer; one too large
		 * for a long long (converting it would be undefined) is left
		 * out, as an unknown count is. */
		const struct num *c = &o->gpu_count;
		if (c->set && (c->integral || fabs(c->d) < 9e18)) {
			char count[32];
			snprintf(count, sizeof count, "%lldx",
				 c->integral ? c->i : (long long)c->d);
			add_component(&b, count);
		}
		v[i].o = o;
		v[i].base = buf_steal(&b);
		v[i].key = identity_key(o);
	}

	/* Security, then spot, only inside runs that share a base name. */
	const char *(*words[])(const struct offer *) = {security_of, spot_of};
	for (size_t w = 0; w < 2; w++) {
		qsort(v, n, sizeof *v, cmp_named);
		for (size_t from = 0; from < n;) {
			size_t to = from + 1;
			while (to < n && !strcmp(v[to].base, v[from].base))
				to++;
			if (to - from > 1)
				qualify(v, from, to, words[w]);
			from = to;
		}
	}

	/* Too long to be a path component: cut, and let a cut that makes two
	 * names equal be settled as twins are. */
	for (size_t i = 0; i < n; i++)
		truncate_name(v[i].base, BASE_LEN_MAX);

	/* Twins left: the first in identity order keeps the name, the others
	 * get the first free "-N". Free means unused by any offer's name. */
	qsort(v, n, sizeof *v, cmp_named);
	struct strset taken;
	strset_init(&taken, 2 * n + 1);
	for (size_t i = 0; i < n; i++)
		strset_add(&taken, v[i].base);
	for (size_t i = 0; i < n; i++) {
		/* The type directory's link holds OFFER_LINK_NAME: an offer
		 * whose name it would be is a twin of the link. */
		if ((i == 0 || strcmp(v[i].base, v[i - 1].base)) &&
		    strcmp(v[i].base, OFFER_LINK_NAME)) {
			v[i].o->name = xstrdup(v[i].base);
			continue;
		}
		for (int k = 2;; k++) {
			struct buf b;
			buf_init(&b);
			buf_printf(&b, "%s-%d", v[i].base, k);
			if (!strset_has(&taken, b.data)) {
				v[i].o->name = buf_steal(&b);
				strset_add(&taken, v[i].o->name);
				break;
			}
			buf_free(&b);
		}
	}
	strset_free(&taken);
	for (size_t i = 0; i < n; i++) {
		free(v[i].base);
		free(v[i].key);
	}
	free(v);
}

static size_t count_sorted(char **v, size_t n, const char *s)
{
	char **hit = bsearch(&s, v, n, sizeof *v, cmp_str);
	if (!hit)
		return 0;
	char **lo = hit, **hi = hit;
	while (lo > v && !strcmp(lo[-1], s))
		lo--;
	while (hi + 1 < v + n && !strcmp(hi[1], s))
		hi++;
	return (size_t)(hi - lo) + 1;
}

/* A name a pod may be listed under: safe, and not hidden. tree.c answers
 * every name that starts with '.' as a probe (ENOENT), so such a name would
 * be listed yet never resolve. */
static bool listable(const char *s)
{
	return safe_name(s) && s[0] != '.';
}

void name_pods(struct pod *pods, size_t n)
{
	char **ids = xcalloc(n, sizeof *ids);
	char **names = xcalloc(n, sizeof *names);
	size_t n_names = 0;
	for (size_t i = 0; i < n; i++) {
		ids[i] = pods[i].id;
		if (pods[i].name)
			names[n_names++] = pods[i].name;
	}
	qsort(ids, n, sizeof *ids, cmp_str);
	qsort(names, n_names, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		const char *name = pods[i].name;
		bool by_name = name && listable(name) &&
			       count_sorted(names, n_names, name) == 1 &&
			       !in_sorted(ids, n, name);
		pods[i].dir = xstrdup(by_name ? name : pods[i].id);
	}
	free(ids);
	free(names);
}

static bool newer(const struct pod *a, const struct pod *b)
{
	time_t ta = parse_iso8601(a->updated), tb = parse_iso8601(b->updated);
	return ta > tb;
}

size_t dedupe_pods(struct pod *pods, size_t n, const char *what)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		struct pod *p = &pods[i];
		if (!listable(p->id)) {
			plog("list", what, "skipped a pod whose id is %s",
			     p->id ? "not a safe, visible file name"
				   : "missing");
			pod_free(p);
			continue;
		}
		size_t j;
		for (j = 0; j < kept; j++)
			if (!strcmp(pods[j].id, p->id))
				break;
		if (j == kept) {
			if (kept != i)
				pods[kept] = *p;
			kept++;
			continue;
		}
		/* The same id twice (seen in the API's own list): keep one. */
		if (newer(p, &pods[j])) {
			pod_free(&pods[j]);
			pods[j] = *p;
		} else {
			pod_free(p);
		}
	}
	return kept;
}
