/* model.c — see model.h. Every accessor tolerates any JSON value where it
 * expected another: the server is trusted for nothing but its bytes. */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
	struct buf b;
	buf_init(&b);
	buf_adds(&b, s ? s : "null");
	buf_addc(&b, '\n');
	return buf_steal(&b);
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

/* A string, or a list of strings; `[null]` and non-strings count as nothing
 * (PRIME_API.md 5.6). */
static void strlist_read(json_object *o, const char *key, struct strlist *out)
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
	size_t len = json_object_array_length(v);
	out->v = xcalloc(len ? len : 1, sizeof *out->v);
	for (size_t i = 0; i < len; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		if (e && json_object_is_type(e, json_type_string))
			out->v[out->n++] = xstrdup(json_object_get_string(e));
	}
}

static struct spec spec_read(json_object *o, const char *key)
{
	json_object *s = jx_obj(o, key);
	struct spec sp = {jx_num(s, "minCount"), jx_num(s, "defaultCount"),
			  jx_num(s, "maxCount")};
	return sp;
}

int offer_parse(json_object *o, bool multinode, struct offer *out)
{
	memset(out, 0, sizeof *out);
	if (!o || !json_object_is_type(o, json_type_object))
		return -1;
	out->cloud_id = jx_dup(o, "cloudId");
	out->gpu_type = jx_dup(o, "gpuType");
	out->socket = jx_dup(o, "socket");
	out->provider = jx_dup(o, "provider");
	out->region = jx_dup(o, "region");
	out->data_center = jx_dup(o, "dataCenter");
	out->country = jx_dup(o, "country");
	out->stock = jx_dup(o, "stockStatus");
	out->security = jx_dup(o, "security");
	out->gpu_count = jx_num(o, "gpuCount");
	out->gpu_memory = jx_num(o, "gpuMemory");
	out->disk = spec_read(o, "disk");
	out->vcpu = spec_read(o, "vcpu");
	out->memory = spec_read(o, "memory");
	json_object *prices = jx_obj(o, "prices");
	out->price = jx_num(prices, "communityPrice");
	if (!out->price.set)
		out->price = jx_num(prices, "onDemand");
	strlist_read(o, "images", &out->images);
	json_object *spot = field(o, "isSpot");
	out->is_spot = spot && json_object_is_type(spot, json_type_boolean)
			   ? json_object_get_boolean(spot)
			   : -1;
	out->multinode = multinode;
	out->json = json_text(o);
	return 0;
}

void offer_free(struct offer *o)
{
	free(o->name);
	free(o->cloud_id);
	free(o->gpu_type);
	free(o->socket);
	free(o->provider);
	free(o->region);
	free(o->data_center);
	free(o->country);
	free(o->stock);
	free(o->security);
	strlist_free(&o->images);
	free(o->json);
	memset(o, 0, sizeof *o);
}

int pod_parse(json_object *o, bool history, struct pod *out)
{
	memset(out, 0, sizeof *out);
	if (!o || !json_object_is_type(o, json_type_object))
		return -1;
	out->history = history;
	out->id = jx_dup(o, "id");
	if (!out->id)
		out->id = jx_dup(o, "podId"); /* /pods/status items */
	out->name = jx_dup(o, "name");
	out->status = jx_dup(o, "status");
	out->install_status = jx_dup(o, "installationStatus");
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
	out->billed = jx_num(o, "totalBilledPrice");
	strlist_read(o, "sshConnection", &out->ssh);
	strlist_read(o, "ip", &out->ip);
	out->created_t = parse_iso8601(out->created);
	out->json = json_text(o);
	return 0;
}

void pod_free(struct pod *p)
{
	free(p->dir);
	free(p->id);
	free(p->name);
	free(p->status);
	free(p->install_status);
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
	return 0;
}

void wallet_free(struct wallet *w)
{
	free(w->currency);
	free(w->json);
	memset(w, 0, sizeof *w);
}

const char *pod_status(const struct pod *p)
{
	if (p->history)
		return "TERMINATED";
	if (p->status && !strcmp(p->status, "ACTIVE") && p->install_status &&
	    strcmp(p->install_status, "FINISHED"))
		return "INSTALLING";
	return p->status;
}

bool pod_ready(const struct pod *p)
{
	const char *s = pod_status(p);
	return s && !strcmp(s, "ACTIVE") && p->ssh.n > 0;
}

bool pod_billing(const struct pod *p)
{
	return !p->history && p->status &&
	       (!strcmp(p->status, "PENDING") ||
		!strcmp(p->status, "PROVISIONING") ||
		!strcmp(p->status, "ACTIVE"));
}

/* Price per hour × hours since creation, or the billed total once the
 * API gives one (PRIME_API.md 5.7: no running total is exposed). */
int pod_cost(const struct pod *p, time_t now, double *cost)
{
	if (p->billed.set) {
		*cost = p->billed.d;
		return 0;
	}
	if (p->history || !p->price_hr.set || p->created_t < 0)
		return -1;
	double hours = difftime(now, p->created_t) / 3600.0;
	*cost = p->price_hr.d * (hours > 0 ? hours : 0);
	return 0;
}

/* ---- history rows and a pod's offer ---- */

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
