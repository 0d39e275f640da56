/* model.c — see model.h. Every accessor tolerates any JSON value where it
 * expected another: the server is trusted for nothing but its bytes. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "log.h"

static json_object *field(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *jx_str(json_object *o, const char *key)
{
	json_object *v = field(o, key);
	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

char *jx_dup(json_object *o, const char *key)
{
	const char *s = jx_str(o, key);
	return s ? xstrdup(s) : NULL;
}

static struct num num_from(json_object *v)
{
	struct num n = {0};
	if (!v)
		return n;
	switch (json_object_get_type(v)) {
	case json_type_int:
		n.set = n.integral = true;
		errno = 0;
		n.i = json_object_get_int64(v);
		n.d = (double)n.i;
		break;
	case json_type_double:
		n.d = json_object_get_double(v);
		n.set = isfinite(n.d);
		break;
	case json_type_string: {
		/* pydantic's lax mode reads "2" and "1.5" as numbers; so do we.
		 */
		const char *s = json_object_get_string(v);
		char *end;
		if (!*s)
			break;
		errno = 0;
		long long i = strtoll(s, &end, 10);
		if (!*end && !errno) {
			n.set = n.integral = true;
			n.i = i;
			n.d = (double)i;
			break;
		}
		double d = strtod(s, &end);
		if (!*end && isfinite(d)) {
			n.set = true;
			n.d = d;
		}
		break;
	}
	default:
		break;
	}
	return n;
}

struct num jx_num(json_object *o, const char *key)
{
	return num_from(field(o, key));
}

json_object *jx_obj(json_object *o, const char *key)
{
	json_object *v = field(o, key);
	return v && json_object_is_type(v, json_type_object) ? v : NULL;
}

json_object *jx_arr(json_object *o, const char *key)
{
	json_object *v = field(o, key);
	return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

char *json_text(json_object *o)
{
	/* Compact, as the API sends it: a 10,000-offer listing keeps one of
	 * these per offer. `jq .` pretty-prints it. */
	const char *s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		s = "null";
	/* Exactly its size: a buf's doubling would nearly double it. */
	size_t n = strlen(s);
	char *t = xmalloc(n + 2);
	memcpy(t, s, n);
	t[n] = '\n';
	t[n + 1] = '\0';
	return t;
}

/* ---- interned strings ----
 * One copy of each distinct value, counted: an offer's provider, region,
 * stock and images are the same few strings across 10,000 offers. Each
 * string is preceded by its entry; the table is a chained hash that grows
 * with the number of distinct strings held, and an entry goes with its
 * last reference, so what it holds is bounded by the snapshots held. */

struct istr {
	struct istr *next;
	size_t refs;
	size_t hash;
	char s[];
};

static pthread_mutex_t istr_mu = PTHREAD_MUTEX_INITIALIZER;
static struct istr **istr_tab;
static size_t istr_cap, istr_n;

static size_t istr_hash(const char *s)
{
	size_t h = 14695981039346656037ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void istr_grow(void)
{
	size_t cap = istr_cap ? istr_cap * 2 : 256;
	struct istr **tab = xcalloc(cap, sizeof *tab);
	for (size_t i = 0; i < istr_cap; i++)
		for (struct istr *e = istr_tab[i], *next; e; e = next) {
			next = e->next;
			e->next = tab[e->hash & (cap - 1)];
			tab[e->hash & (cap - 1)] = e;
		}
	free(istr_tab);
	istr_tab = tab;
	istr_cap = cap;
}

const char *str_intern(const char *s)
{
	if (!s)
		return NULL;
	size_t h = istr_hash(s);
	pthread_mutex_lock(&istr_mu);
	if (istr_n >= istr_cap)
		istr_grow();
	struct istr **b = &istr_tab[h & (istr_cap - 1)];
	for (struct istr *e = *b; e; e = e->next)
		if (e->hash == h && !strcmp(e->s, s)) {
			e->refs++;
			pthread_mutex_unlock(&istr_mu);
			return e->s;
		}
	size_t len = strlen(s);
	struct istr *e = xmalloc(sizeof *e + len + 1);
	memcpy(e->s, s, len + 1);
	e->refs = 1;
	e->hash = h;
	e->next = *b;
	*b = e;
	istr_n++;
	pthread_mutex_unlock(&istr_mu);
	return e->s;
}

void str_unintern(const char *s)
{
	if (!s)
		return;
	struct istr *e = (struct istr *)(void *)(s - offsetof(struct istr, s));
	pthread_mutex_lock(&istr_mu);
	if (--e->refs == 0) {
		struct istr **p = &istr_tab[e->hash & (istr_cap - 1)];
		while (*p != e)
			p = &(*p)->next;
		*p = e->next;
		istr_n--;
		free(e);
		if (!istr_n) {
			free(istr_tab);
			istr_tab = NULL;
			istr_cap = 0;
		}
	}
	pthread_mutex_unlock(&istr_mu);
}

size_t str_interned(void)
{
	pthread_mutex_lock(&istr_mu);
	size_t n = istr_n;
	pthread_mutex_unlock(&istr_mu);
	return n;
}

static const char *jx_intern(json_object *o, const char *key)
{
	return str_intern(jx_str(o, key));
}

void num_render(struct buf *b, struct num n)
{
	if (!n.set)
		return;
	if (n.integral)
		buf_printf(b, "%lld", n.i);
	else
		fmt_number(b, n.d);
}

void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* A string, or a list of strings, one per node. A null (or non-string)
 * entry keeps its node's place as ""; a list with no string at all, such
 * as `[null]`, counts as nothing (PRIME_API.md 5.6). */
/* A string, or a list of strings (nulls: "" when keep_nulls, as a pod's
 * node with none; else a list of nulls alone is unset). */
static void strlist_read(json_object *o, const char *key, struct strlist *out,
			 bool keep_nulls)
{
	json_object *v = field(o, key);
	out->v = NULL;
	out->n = 0;
	if (!v)
		return;
	if (json_object_is_type(v, json_type_string)) {
		out->v = xmalloc(sizeof *out->v);
		out->v[out->n++] = xstrdup(json_object_get_string(v));
		return;
	}
	if (!json_object_is_type(v, json_type_array))
		return;
	size_t len = json_object_array_length(v), strings = 0;
	for (size_t i = 0; i < len; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		strings += e && json_object_is_type(e, json_type_string);
	}
	if (!strings && !(keep_nulls && len))
		return;
	out->v = xcalloc(len, sizeof *out->v);
	for (size_t i = 0; i < len; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		out->v[out->n++] =
		    xstrdup(e && json_object_is_type(e, json_type_string)
				? json_object_get_string(e)
				: "");
	}
}

static struct spec spec_read(json_object *o, const char *key)
{
	json_object *s = jx_obj(o, key);
	struct spec sp = {jx_num(s, "minCount"), jx_num(s, "defaultCount"),
			  jx_num(s, "maxCount"), -1, 0};
	struct num ppu = jx_num(s, "pricePerUnit"), step = jx_num(s, "step");
	if (ppu.set && ppu.d >= 0 && isfinite(ppu.d))
		sp.ppu = ppu.d;
	if (step.set && step.d >= 1 && step.d <= 1e6)
		sp.step = (int)step.d;
	return sp;
}

int offer_parse(json_object *o, bool multinode, struct offer *out)
{
	memset(out, 0, sizeof *out);
	if (!o || !json_object_is_type(o, json_type_object))
		return -1;
	out->cloud_id = jx_intern(o, "cloudId");
	out->gpu_type = jx_intern(o, "gpuType");
	out->socket = jx_intern(o, "socket");
	out->provider = jx_intern(o, "provider");
	out->region = jx_intern(o, "region");
	out->data_center = jx_intern(o, "dataCenter");
	out->country = jx_intern(o, "country");
	out->stock = jx_intern(o, "stockStatus");
	out->security = jx_intern(o, "security");
	out->gpu_count = jx_num(o, "gpuCount");
	out->gpu_memory = jx_num(o, "gpuMemory");
	out->disk = spec_read(o, "disk");
	out->vcpu = spec_read(o, "vcpu");
	out->memory = spec_read(o, "memory");
	json_object *prices = jx_obj(o, "prices");
	out->price = jx_num(prices, "communityPrice");
	if (!out->price.set)
		out->price = jx_num(prices, "onDemand");
	strlist_read(o, "images", &out->images, false);
	for (size_t i = 0; i < out->images.n; i++) {
		const char *v = str_intern(out->images.v[i]);
		free(out->images.v[i]);
		out->images.v[i] = (char *)v;
	}
	out->prepaid = jx_num(o, "prepaidTime");
	json_object *spot = field(o, "isSpot");
	out->is_spot = spot && json_object_is_type(spot, json_type_boolean)
			   ? json_object_get_boolean(spot)
			   : -1;
	out->multinode = multinode;
	char *text = json_text(o);
	offer_set_json(out, text);
	free(text);
	return 0;
}

void offer_free(struct offer *o)
{
	free(o->name);
	str_unintern(o->cloud_id);
	str_unintern(o->gpu_type);
	str_unintern(o->socket);
	str_unintern(o->provider);
	str_unintern(o->region);
	str_unintern(o->data_center);
	str_unintern(o->country);
	str_unintern(o->stock);
	str_unintern(o->security);
	for (size_t i = 0; i < o->images.n; i++)
		str_unintern(o->images.v[i]);
	free(o->images.v);
	free(o->zjson);
	memset(o, 0, sizeof *o);
}

/* ---- an offer's JSON, deflated ----
 * Raw deflate (no header, no checksum) with a preset dictionary: an offer
 * of the API's schema (compute.yml GpuAvailability) with its keys, nulls
 * and the values its enums and most offers share, so that what is left of
 * an offer is mostly its own values. The most common strings come last,
 * nearest the text. A 4 KiB window holds the dictionary and an offer. */

#define Z_WBITS	   12
#define Z_MEMLEVEL 5

static const char offer_dict[] =
    "\"GB200\",\"GB300\",\"RTX4090_24GB\",\"RTX5090_32GB\",\"L40S_48GB\","
    "\"A10_24GB\",\"A40_48GB\",\"L4_24GB\",\"B200_180GB\",\"H200_141GB\","
    "\"GH200_96GB\",\"RTX6000Ada_48GB\",\"CPU_NODE\",\"SXM2\",\"SXM4\","
    "\"SXM5\",\"SXM6\",\"fluidstack\",\"lambdalabs\",\"hyperstack\","
    "\"oblivus\",\"cudocompute\",\"scaleway\",\"tensordock\",\"datacrunch\","
    "\"latitude\",\"crusoecloud\",\"massedcompute\",\"akash\","
    "\"primeintellect\",\"primecompute\",\"nebius\",\"vultr\",\"denvr\","
    "\"eu_east\",\"eu_north\",\"eu_west\",\"canada\",\"asia_south\","
    "\"asia_northeast\",\"Unavailable\",\"Medium\",\"High\",\"EUR\","
    "\"community_cloud\",\"hivemind\",\"petals_llama\",\"flux\","
    "{\"cloudId\":\"\",\"gpuType\":\"H100_80GB\",\"socket\":\"PCIe\","
    "\"provider\":\"runpod\",\"region\":\"united_states\",\"dataCenter\":"
    "\"US-\",\"country\":\"US\",\"gpuCount\":8,\"gpuMemory\":80,"
    "\"disk\":{\"minCount\":null,\"defaultCount\":null,\"maxCount\":null,"
    "\"pricePerUnit\":null,\"step\":null,\"defaultIncludedInPrice\":null,"
    "\"additionalInfo\":null},\"sharedDisk\":{\"minCount\":null,"
    "\"defaultCount\":null,\"maxCount\":null,\"pricePerUnit\":null,"
    "\"step\":null,\"defaultIncludedInPrice\":null,\"additionalInfo\":"
    "null},\"vcpu\":{\"minCount\":null,\"defaultCount\":null,\"maxCount\":"
    "null,\"pricePerUnit\":null,\"step\":null,\"defaultIncludedInPrice\":"
    "null,\"additionalInfo\":null},\"memory\":{\"minCount\":null,"
    "\"defaultCount\":null,\"maxCount\":null,\"pricePerUnit\":null,"
    "\"step\":null,\"defaultIncludedInPrice\":false,\"additionalInfo\":"
    "null},\"internetSpeed\":null,\"interconnect\":null,"
    "\"interconnectType\":null,\"provisioningTime\":null,\"stockStatus\":"
    "\"Available\",\"security\":\"secure_cloud\",\"prices\":{\"onDemand\":"
    "null,\"communityPrice\":null,\"isVariable\":null,\"currency\":\"USD\"},"
    "\"images\":[\"ubuntu_22_cuda_12\",\"cuda_12_1_pytorch_2_2\","
    "\"cuda_11_8_pytorch_2_1\",\"cuda_12_1_pytorch_2_3\","
    "\"cuda_12_1_pytorch_2_4\",\"cuda_12_4_pytorch_2_4\","
    "\"cuda_12_4_pytorch_2_5\",\"cuda_12_4_pytorch_2_6\","
    "\"cuda_12_6_pytorch_2_7\",\"stable_diffusion\",\"axolotl\","
    "\"bittensor\",\"vllm_llama_8b\",\"vllm_llama_70b\",\"vllm_llama_405b\","
    "\"custom_template\",\"prime_rl\"],\"isSpot\":null,\"prepaidTime\":null}"
    "\n";

/* zlib fails here only when memory does: as util.h's allocators do. */
static void z_fail(const char *what, int rc)
{
	fprintf(stderr, "primefs: %s of an offer's JSON failed (zlib %d)\n",
		what, rc);
	abort();
}

/* One deflate stream, reset for each offer: a stream's setup costs more
 * than deflating an offer, and offers are parsed by one fetch at a time. */
static pthread_mutex_t z_mu = PTHREAD_MUTEX_INITIALIZER;
static z_stream z_def;
static bool z_ready;

void offer_set_json(struct offer *o, const char *text)
{
	free(o->zjson);
	o->zjson = NULL;
	o->zjson_len = o->json_len = 0;
	size_t n = text ? strlen(text) : 0;
	if (!n || n > UINT32_MAX / 2)
		return;
	pthread_mutex_lock(&z_mu);
	int rc = Z_OK;
	if (!z_ready) {
		rc = deflateInit2(&z_def, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
				  -Z_WBITS, Z_MEMLEVEL, Z_DEFAULT_STRATEGY);
		z_ready = rc == Z_OK;
	} else {
		rc = deflateReset(&z_def);
	}
	if (rc == Z_OK)
		rc = deflateSetDictionary(&z_def, (const Bytef *)offer_dict,
					  sizeof offer_dict - 1);
	uLong bound = z_ready ? deflateBound(&z_def, (uLong)n) : 0;
	unsigned char *tmp = rc == Z_OK ? xmalloc(bound) : NULL;
	if (tmp) {
		z_def.next_in = (Bytef *)text;
		z_def.avail_in = (uInt)n;
		z_def.next_out = tmp;
		z_def.avail_out = (uInt)bound;
		rc = deflate(&z_def, Z_FINISH);
	}
	size_t zn = tmp ? bound - z_def.avail_out : 0;
	pthread_mutex_unlock(&z_mu);
	if (rc != Z_STREAM_END)
		z_fail("deflate", rc);
	/* Exactly its size. */
	o->zjson = xmalloc(zn);
	memcpy(o->zjson, tmp, zn);
	free(tmp);
	o->zjson_len = (uint32_t)zn;
	o->json_len = (uint32_t)n;
}

void offer_json_text(const struct offer *o, struct buf *out)
{
	if (!o->zjson)
		return;
	z_stream z = {0};
	int rc = inflateInit2(&z, -Z_WBITS);
	if (rc == Z_OK)
		rc = inflateSetDictionary(&z, (const Bytef *)offer_dict,
					  sizeof offer_dict - 1);
	size_t at = out->len;
	buf_reserve(out, o->json_len);
	if (rc == Z_OK) {
		z.next_in = o->zjson;
		z.avail_in = o->zjson_len;
		z.next_out = (Bytef *)out->data + at;
		z.avail_out = o->json_len;
		rc = inflate(&z, Z_FINISH);
	}
	inflateEnd(&z);
	if (rc != Z_STREAM_END || z.avail_out)
		z_fail("inflate", rc);
	out->len = at + o->json_len;
	out->data[out->len] = '\0';
}

bool offer_json_same(const struct offer *a, const struct offer *b)
{
	/* The same text deflates to the same bytes (one zlib, one
	 * dictionary, the same settings), and different texts never do. */
	return a->zjson_len == b->zjson_len && a->json_len == b->json_len &&
	       (!a->zjson_len || !memcmp(a->zjson, b->zjson, a->zjson_len));
}

static bool str_is(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* Pods whose installation failure is in the log already. */
static pthread_mutex_t failed_mu = PTHREAD_MUTEX_INITIALIZER;
static char **failed_ids;
static size_t n_failed;

static void log_install_failure(const char *id, const char *name,
				const char *why)
{
	pthread_mutex_lock(&failed_mu);
	for (size_t i = 0; i < n_failed; i++)
		if (!strcmp(failed_ids[i], id)) {
			pthread_mutex_unlock(&failed_mu);
			return;
		}
	failed_ids = xrealloc(failed_ids, (n_failed + 1) * sizeof *failed_ids);
	failed_ids[n_failed++] = xstrdup(id);
	pthread_mutex_unlock(&failed_mu);
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/pods/%s", name ? name : id);
	plog("install", path.data, "installation failed: %s",
	     why ? why : "(the API gives no reason)");
	buf_free(&path);
}

int pod_parse(json_object *o, bool history, struct pod *out)
{
	memset(out, 0, sizeof *out);
	if (!o || !json_object_is_type(o, json_type_object))
		return -1;
	const char *status = jx_str(o, "status");
	if (!history &&
	    (str_is(status, "DELETING") || str_is(status, "TERMINATED")))
		return 1;
	out->history = history;
	out->disk = history && history_row_is_disk(o);
	out->id = jx_dup(o, "id");
	if (!out->id)
		out->id = jx_dup(o, "podId"); /* /pods/status items */
	out->name = jx_dup(o, "name");
	out->status = jx_dup(o, "status");
	out->install_status = jx_dup(o, "installationStatus");
	out->install_failure = jx_dup(o, "installationFailure");
	out->gpu_type = jx_dup(o, "gpuName");
	out->provider = jx_dup(o, "providerType");
	out->image = jx_dup(o, "environmentType");
	out->socket = jx_dup(o, "socket");
	out->created = jx_dup(o, "createdAt");
	out->updated = jx_dup(o, "updatedAt");
	out->terminated = jx_dup(o, "terminatedAt");
	out->gpu_count = jx_num(o, "gpuCount");
	out->progress = jx_num(o, "installationProgress");
	out->price_hr = jx_num(o, "priceHr");
	out->stopped_price_hr = jx_num(o, "stoppedPriceHr");
	out->provisioning_price_hr = jx_num(o, "provisioningPriceHr");
	out->billed = jx_num(o, "totalBilledPrice");
	strlist_read(o, "sshConnection", &out->ssh, true);
	strlist_read(o, "ip", &out->ip, true);
	out->created_t = parse_iso8601(out->created);
	out->json = json_text(o);
	if (!history && out->id && str_is(out->status, "ACTIVE") &&
	    str_is(out->install_status, "ERROR"))
		log_install_failure(out->id, out->name, out->install_failure);
	return 0;
}

void pod_free(struct pod *p)
{
	free(p->dir);
	free(p->id);
	free(p->name);
	free(p->status);
	free(p->install_status);
	free(p->install_failure);
	free(p->gpu_type);
	free(p->provider);
	free(p->image);
	free(p->socket);
	free(p->created);
	free(p->updated);
	free(p->terminated);
	strlist_free(&p->ssh);
	strlist_free(&p->ip);
	free(p->json);
	memset(p, 0, sizeof *p);
}

int wallet_parse(json_object *o, struct wallet *out)
{
	memset(out, 0, sizeof *out);
	if (!o || !json_object_is_type(o, json_type_object))
		return -1;
	out->balance = jx_num(o, "balance_usd");
	out->currency = jx_dup(o, "currency");
	out->json = json_text(o);
	wallet_add_rows(o, out, NULL);
	return 0;
}

size_t wallet_add_rows(json_object *o, struct wallet *w, time_t *oldest)
{
	json_object *rows = jx_arr(o, "recent_billings");
	size_t len = rows ? json_object_array_length(rows) : 0;
	w->rows = xrealloc(w->rows, (w->n_rows + len + 1) * sizeof *w->rows);
	for (size_t i = 0; i < len; i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		time_t created = parse_iso8601(jx_str(r, "created_at"));
		time_t billed = parse_iso8601(jx_str(r, "last_billed_at"));
		time_t at = billed != -1 ? billed : created;
		if (oldest && at != -1 && (*oldest == -1 || at < *oldest))
			*oldest = at;
		const char *id = jx_str(r, "resource_id");
		struct num amount = jx_num(r, "amount_usd");
		if (!id || !amount.set)
			continue;
		struct billing_row *b = &w->rows[w->n_rows++];
		b->resource_id = xstrdup(id);
		b->amount_usd = amount.d;
		b->created = created;
		b->last_billed = billed;
	}
	return len;
}

void wallet_free(struct wallet *w)
{
	for (size_t i = 0; i < w->n_rows; i++)
		free(w->rows[i].resource_id);
	free(w->rows);
	free(w->currency);
	free(w->json);
	memset(w, 0, sizeof *w);
}

bool offer_in_stock(const struct offer *o)
{
	return o->stock && strcmp(o->stock, "Unavailable") != 0;
}

bool offer_plain_rentable(const struct offer *o)
{
	return offer_in_stock(o) && o->price.set && o->is_spot != 1 &&
	       !(o->prepaid.set && o->prepaid.d > 0);
}

const char *pod_status(const struct pod *p)
{
	if (p->history)
		return "TERMINATED";
	if (str_is(p->status, "ACTIVE") && p->install_status) {
		if (!strcmp(p->install_status, "ERROR"))
			return "INSTALL_FAILED";
		if (strcmp(p->install_status, "FINISHED"))
			return "INSTALLING";
	}
	return p->status;
}

bool pod_ready(const struct pod *p)
{
	const char *s = pod_status(p);
	return s && !strcmp(s, "ACTIVE") && p->ssh.n > 0 && *p->ssh.v[0];
}

bool pod_bills(const struct pod *p)
{
	return !p->history &&
	       (str_is(p->status, "PENDING") ||
		str_is(p->status, "PROVISIONING") ||
		str_is(p->status, "ACTIVE") || str_is(p->status, "STOPPED"));
}

struct num pod_price(const struct pod *p)
{
	struct num zero = {.set = true, .integral = true};
	if (str_is(p->status, "PROVISIONING") || str_is(p->status, "PENDING"))
		return p->provisioning_price_hr.set ? p->provisioning_price_hr
						    : p->price_hr;
	if (str_is(p->status, "STOPPED"))
		return p->stopped_price_hr.set ? p->stopped_price_hr
					       : p->price_hr;
	if (str_is(p->status, "ERROR"))
		return zero;
	return p->price_hr;
}

int pod_cost(const struct pod *p, const struct wallet *w, time_t now,
	     double *cost)
{
	if (p->history) {
		if (!p->billed.set)
			return -1;
		*cost = p->billed.d;
		return 0;
	}
	double billed = 0;
	bool rows = false;
	time_t newest = -1, since = p->created_t;
	for (size_t i = 0; w && p->id && i < w->n_rows; i++) {
		const struct billing_row *r = &w->rows[i];
		if (strcmp(r->resource_id, p->id))
			continue;
		billed += r->amount_usd;
		/* The newest row says until when the pod is billed. */
		if (!rows || r->created >= newest) {
			newest = r->created;
			since =
			    r->last_billed >= 0 ? r->last_billed : p->created_t;
		}
		rows = true;
	}
	struct num price = pod_price(p);
	if (!price.set || since < 0) {
		if (!rows)
			return -1;
		*cost = billed; /* the running part cannot be known */
		return 0;
	}
	double hours = difftime(now, since) / 3600.0;
	*cost = billed + price.d * (hours > 0 ? hours : 0);
	return 0;
}

/* ---- history rows and a pod's offer ---- */

bool history_row_is_disk(json_object *o)
{
	const char *type = jx_str(o, "type");
	return type && !strcasecmp(type, "Disk");
}

bool history_row_is_pod(json_object *o)
{
	const char *type = jx_str(o, "type");
	return type &&
	       (!strcasecmp(type, "Instance") || !strcasecmp(type, "Cluster"));
}

void pod_origin_read(const struct pod *p, struct pod_origin *out)
{
	memset(out, 0, sizeof *out);
	out->is_spot = -1;
	json_object *o = p->json ? json_tokener_parse(p->json) : NULL;
	if (!o)
		return;
	out->cloud_id = jx_dup(o, "cloudId");
	out->data_center = jx_dup(o, "dataCenter");
	if (!out->data_center)
		out->data_center = jx_dup(o, "dataCenterId");
	json_object *spot = field(o, "isSpot");
	if (spot && json_object_is_type(spot, json_type_boolean))
		out->is_spot = json_object_get_boolean(spot);
	json_object *res = jx_obj(o, "resources");
	out->vcpus = jx_num(res, "vcpus");
	out->memory = jx_num(res, "memory");
	out->disk = jx_num(res, "disk");
	json_object_put(o);
}

void pod_origin_free(struct pod_origin *o)
{
	free(o->cloud_id);
	free(o->data_center);
	memset(o, 0, sizeof *o);
}

/* Both known and different; an unknown side never tells two apart. */
static bool differ(const char *a, const char *b)
{
	return a && b && strcmp(a, b);
}

static bool num_differ(struct num a, struct num b)
{
	return a.set && b.set && a.d != b.d;
}

bool offer_fits_pod(const struct offer *o, const struct pod *p,
		    const struct pod_origin *po)
{
	if (!o->gpu_type || !p->gpu_type || strcmp(o->gpu_type, p->gpu_type))
		return false;
	if (num_differ(o->gpu_count, p->gpu_count) ||
	    differ(o->provider, p->provider) || differ(o->socket, p->socket) ||
	    differ(o->data_center, po->data_center) ||
	    differ(o->cloud_id, po->cloud_id))
		return false;
	return !(o->is_spot >= 0 && po->is_spot >= 0 &&
		 o->is_spot != po->is_spot);
}

bool offer_resources_fit(const struct offer *o, const struct pod_origin *po)
{
	return !num_differ(o->vcpu.def, po->vcpus) &&
	       !num_differ(o->memory.def, po->memory) &&
	       !num_differ(o->disk.def, po->disk);
}
