/* naming.c — see naming.h. Names are computed from sorted copies so that
 * the API's listing order never changes which offer gets which name. */
#include "naming.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sshkeys.h"

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
 * listed but could never be looked up. The start of an offer's name leaves
 * room for "-community-spot", a twin's "-" and 16 hex digits, and the last
 * resort's "-N". */
#define NAME_LEN_MAX	  255
#define QUALIFIED_LEN_MAX (NAME_LEN_MAX - 15 - 17 - 12)

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

struct named {
	struct offer *o;
	char *base; /* the name from the offer's fields, before any suffix */
	char
	    *key; /* identity, for an order that does not depend on the API's */
	char *name; /* the name given, before the last-resort "-N" */
	bool twin;
	bool long_id; /* a twin whose short suffix would clash */
	uint64_t id;  /* a twin's identity hash, its suffix */
};

/* What tells offers apart, price, stock and availability aside (the sound
 * key of PRIME_API.md 4.3, plus the region). */
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

/* 64-bit FNV-1a, then a finalizer so that every hex digit is mixed: the
 * same text gives the same suffix on every machine. */
static uint64_t hash64(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h;
}

/* The end of the JSON string that starts at p (its opening quote). */
static const char *skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

/* The end of the JSON value that starts at p. */
static const char *skip_value(const char *p)
{
	int depth = 0;
	while (*p) {
		if (*p == '"') {
			p = skip_string(p);
			if (!depth)
				return p;
			continue;
		}
		if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (!depth)
				return p;
			if (!--depth)
				return p + 1;
		} else if (!depth && *p == ',') {
			return p;
		}
		p++;
	}
	return p;
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static bool changes_in_place(const char *key, size_t len)
{
	return (len == 6 && !memcmp(key, "prices", 6)) ||
	       (len == 11 && !memcmp(key, "stockStatus", 11));
}

/* The offer as the API sent it, less what changes while it stays the same
 * offer (the values of its prices and stockStatus): for twins whose
 * identity keys match. A scan of the text, not a parse: 10,000 twins must
 * not cost 10,000 json-c trees. */
static uint64_t json_hash(const struct offer *o, uint64_t h)
{
	struct buf b, text;
	buf_init(&b);
	buf_init(&text);
	offer_json_text(o, &text);
	int depth = 0;
	const char *p = text.data ? text.data : "";
	while (*p) {
		if (*p == '"') {
			const char *end = skip_string(p);
			const char *q = skip_space(end);
			if (depth == 1 && *q == ':' && end - p >= 2 &&
			    changes_in_place(p + 1, (size_t)(end - p - 2))) {
				/* The key stays, its value goes. */
				buf_add(&b, p, (size_t)(end - p));
				p = skip_value(skip_space(q + 1));
				continue;
			}
			buf_add(&b, p, (size_t)(end - p));
			p = end;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		buf_addc(&b, *p++);
	}
	h = hash64(h, b.data ? b.data : "");
	buf_free(&b);
	buf_free(&text);
	return h;
}

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->base, y->base);
	if (!c)
		c = strcmp(x->key, y->key);
	if (c)
		return c;
	/* Last, the whole object: inflated here, for offers alike in all
	 * else, rather than copied into every key (10,000 offers would
	 * double the listing). */
	struct buf tx, ty;
	buf_init(&tx);
	buf_init(&ty);
	offer_json_text(x->o, &tx);
	offer_json_text(y->o, &ty);
	c = strcmp(tx.data ? tx.data : "", ty.data ? ty.data : "");
	buf_free(&tx);
	buf_free(&ty);
	return c;
}

/* For the last resort: by name, an offer named from its fields alone
 * before a twin, then in identity order. */
static int cmp_final(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (!c)
		c = (int)x->twin - (int)y->twin;
	return c ? c : cmp_named(a, b);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_sorted(char **names, size_t n, const char *s)
{
	return bsearch(&s, names, n, sizeof *names, cmp_str) != NULL;
}

static size_t count_sorted(char **v, size_t n, const char *s);

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

/* provider, data center (or country), socket and GPU count; the part
 * before the qualifiers is cut so that they always fit. */
static char *base_name(const struct offer *o)
{
	struct buf b;
	buf_init(&b);
	/* A provider that is missing, empty or all unusable characters is
	 * "unknown": a name is never empty. */
	add_component(&b, o->provider);
	if (!b.len)
		add_component(&b, "unknown");
	add_component(&b, o->data_center ? o->data_center : o->country);
	add_component(&b, o->socket);
	/* A fractional count is cut to an integer; one too large for a long
	 * long (converting it would be undefined) is left out, as an unknown
	 * count is. */
	const struct num *c = &o->gpu_count;
	if (c->set && (c->integral || fabs(c->d) < 9e18)) {
		char count[32];
		snprintf(count, sizeof count, "%lldx",
			 c->integral ? c->i : (long long)c->d);
		add_component(&b, count);
	}
	if (b.len > QUALIFIED_LEN_MAX) {
		b.len = QUALIFIED_LEN_MAX;
		b.data[b.len] = '\0';
	}
	if (o->security && !strcmp(o->security, "community_cloud"))
		add_component(&b, "community");
	if (o->is_spot == 1)
		add_component(&b, "spot");
	return buf_steal(&b);
}

static char *suffixed(const char *base, uint64_t id, int digits)
{
	struct buf b;
	buf_init(&b);
	char hex[17];
	snprintf(hex, sizeof hex, "%016llx", (unsigned long long)id);
	buf_printf(&b, "%s-%.*s", base, digits, hex);
	return buf_steal(&b);
}

void name_offers(struct offer **offers, size_t n)
{
	if (!n)
		return;
	struct named *v = xcalloc(n, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		v[i].o = offers[i];
		v[i].base = base_name(offers[i]);
		v[i].key = identity_key(offers[i]);
	}

	/* Twins: offers that share a base name (or are named like a link).
	 * Each gets a suffix from its identity: its identity key, and, where
	 * a twin has the same key, its JSON less prices and stock. */
	qsort(v, n, sizeof *v, cmp_named);
	for (size_t from = 0; from < n;) {
		size_t to = from + 1;
		while (to < n && !strcmp(v[to].base, v[from].base))
			to++;
		bool twins =
		    to - from > 1 || !strcmp(v[from].base, CHEAPEST_NAME);
		for (size_t i = from; i < to && twins; i++) {
			v[i].twin = true;
			v[i].id = hash64(1469598103934665603u, v[i].key);
			bool same_key =
			    (i > from && !strcmp(v[i - 1].key, v[i].key)) ||
			    (i + 1 < to && !strcmp(v[i + 1].key, v[i].key));
			if (same_key)
				v[i].id = json_hash(v[i].o, v[i].id);
		}
		from = to;
	}

	/* A twin's short suffix is long when it would give a name that
	 * another offer has, or would have with its short suffix. */
	char **all = xcalloc(n, sizeof *all);
	for (size_t i = 0; i < n; i++) {
		v[i].name = v[i].twin ? suffixed(v[i].base, v[i].id, 6)
				      : xstrdup(v[i].base);
		all[i] = v[i].name;
	}
	qsort(all, n, sizeof *all, cmp_str);
	for (size_t i = 0; i < n; i++)
		if (v[i].twin && count_sorted(all, n, v[i].name) > 1)
			v[i].long_id = true;
	free(all);
	for (size_t i = 0; i < n; i++)
		if (v[i].long_id) {
			free(v[i].name);
			v[i].name = suffixed(v[i].base, v[i].id, 16);
		}

	/* The last resort, for offers alike in all but price and stock (or
	 * hostile fields): the first keeps the name, the others get the
	 * first free "-N". Free means unused by any offer's name. */
	qsort(v, n, sizeof *v, cmp_final);
	struct strset taken;
	strset_init(&taken, 2 * n + 1);
	for (size_t i = 0; i < n; i++)
		strset_add(&taken, v[i].name);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(v[i].name, v[i - 1].name)) {
			v[i].o->name = xstrdup(v[i].name);
			continue;
		}
		for (int k = 2;; k++) {
			struct buf b;
			buf_init(&b);
			buf_printf(&b, "%s-%d", v[i].name, k);
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
		free(v[i].name);
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

void name_keys(struct ssh_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = keys[i].name;
		bool by_name =
		    name && listable(name) && strcmp(name, "primary") != 0;
		for (size_t j = 0; by_name && j < n; j++)
			if (j != i &&
			    ((keys[j].name && !strcmp(keys[j].name, name)) ||
			     !strcmp(keys[j].id, name)))
				by_name = false;
		const char *dir = by_name ? name : keys[i].id;
		keys[i].dir = listable(dir) && strcmp(dir, "primary") != 0
				  ? xstrdup(dir)
				  : NULL;
	}
}
