/* disks.c — see disks.h. */
#include "disks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errmap.h"
#include "log.h"

int disk_offer_parse(json_object *o, struct offer *out)
{
	if (offer_parse(o, false, out))
		return -1;
	str_unintern(out->gpu_type);
	out->gpu_type = str_intern(DISK_OFFER_TYPE);
	json_object *spec = jx_obj(o, "spec");
	out->price = jx_num(spec, "pricePerUnit");
	out->disk.min = jx_num(spec, "minCount");
	out->disk.def = jx_num(spec, "defaultCount");
	out->disk.max = jx_num(spec, "maxCount");
	return 0;
}

/* One GET whose 2xx body must be an object. */
static int get_object(struct api *a, const char *path, const char *endpoint,
		      json_object **out)
{
	struct http_resp r;
	http_resp_init(&r);
	int rc = 0;
	*out = NULL;
	if (!http_call(a->http, "GET", path, NULL, endpoint, &r))
		rc = api_fail(endpoint, path, &r);
	else if (!(*out = api_parse_object(endpoint, &r)))
		rc = -EIO;
	http_resp_free(&r);
	return rc;
}

int api_list_disks(struct api *a, struct pod_list *out)
{
	long offset = 0;
	out->v = NULL;
	out->n = 0;
	for (int page = 0; page < API_MAX_PAGES; page++) {
		char path[96];
		snprintf(path, sizeof path, "/disks/?offset=%ld&limit=%d",
			 offset, API_PAGE_SIZE);
		json_object *o;
		int rc = get_object(a, path, "GET /disks", &o);
		if (rc) {
			pod_list_free(out);
			return rc;
		}
		json_object *data = jx_arr(o, "data");
		struct num total = jx_num(o, "total_count");
		size_t len = data ? json_object_array_length(data) : 0;
		out->v = xrealloc(out->v, (out->n + len + 1) * sizeof *out->v);
		for (size_t i = 0; i < len; i++)
			if (pod_parse(json_object_array_get_idx(data, i), false,
				      &out->v[out->n]) == 0)
				out->n++;
		json_object_put(o);
		offset += (long)len;
		if (len == 0 || !total.set || total.d <= (double)offset)
			return 0;
	}
	plog("list", "/disks", "stopped after %d pages", API_MAX_PAGES);
	return 0;
}

static int gpu_offer_parse(json_object *o, struct offer *out)
{
	return offer_parse(o, false, out);
}

/* Every page of an availability listing: base?QUERY&page=..&page_size=.. */
static int list_offers(struct api *a, const char *base, const char *query,
		       const char *endpoint,
		       int (*parse)(json_object *, struct offer *),
		       struct offer_list *out)
{
	size_t collected = 0;
	out->v = NULL;
	out->n = 0;
	for (int page = 1; page <= API_MAX_PAGES; page++) {
		struct buf path;
		buf_init(&path);
		buf_printf(&path, "%s?%s%spage=%d&page_size=%d", base, query,
			   *query ? "&" : "", page, API_PAGE_SIZE);
		json_object *o;
		int rc = get_object(a, path.data, endpoint, &o);
		buf_free(&path);
		if (rc) {
			offer_list_free(out);
			return rc;
		}
		json_object *items = jx_arr(o, "items");
		struct num total = jx_num(o, "totalCount");
		size_t len = items ? json_object_array_length(items) : 0;
		out->v = xrealloc(out->v, (out->n + len + 1) * sizeof *out->v);
		for (size_t i = 0; i < len; i++)
			if (parse(json_object_array_get_idx(items, i),
				  &out->v[out->n]) == 0)
				out->n++;
		json_object_put(o);
		collected += len;
		if (len == 0 || !total.set || total.d <= (double)collected)
			return 0;
	}
	plog("list", base, "stopped after %d pages", API_MAX_PAGES);
	return 0;
}

int api_list_disk_offers(struct api *a, struct offer_list *out)
{
	return list_offers(a, "/availability/disks", "",
			   "GET /availability/disks", disk_offer_parse, out);
}

int api_list_offers_for_disks(struct api *a, json_object *ids,
			      struct offer_list *out)
{
	struct buf q;
	buf_init(&q);
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		buf_adds(&q, q.len ? "&disks=" : "disks=");
		http_escape_into(&q, json_object_get_string(
					 json_object_array_get_idx(ids, i)));
	}
	int rc = list_offers(a, "/availability/gpus", q.len ? q.data : "",
			     "GET /availability/gpus", gpu_offer_parse, out);
	buf_free(&q);
	return rc;
}

int api_create_disk(struct api *a, const char *name, long size,
		    const struct offer *o, struct pod *out, const char *path)
{
	json_object *body = json_object_new_object();
	json_object *disk = json_object_new_object();
	json_object_object_add(disk, "size", json_object_new_int64(size));
	json_object_object_add(disk, "name", json_object_new_string(name));
	if (o->country)
		json_object_object_add(disk, "country",
				       json_object_new_string(o->country));
	if (o->cloud_id)
		json_object_object_add(disk, "cloudId",
				       json_object_new_string(o->cloud_id));
	if (o->data_center)
		json_object_object_add(disk, "dataCenterId",
				       json_object_new_string(o->data_center));
	json_object_object_add(body, "disk", disk);
	json_object *provider = json_object_new_object();
	json_object_object_add(
	    provider, "type",
	    json_object_new_string(o->provider ? o->provider : ""));
	json_object_object_add(body, "provider", provider);
	if (a->team_id && *a->team_id) {
		json_object *team = json_object_new_object();
		json_object_object_add(team, "teamId",
				       json_object_new_string(a->team_id));
		json_object_object_add(body, "team", team);
	}
	const char *text =
	    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	struct http_resp r;
	http_resp_init(&r);
	int rc = 0;
	memset(out, 0, sizeof *out);
	if (!http_call(a->http, "POST", "/disks/", text, "POST /disks", &r)) {
		rc = api_fail("mkdir", path, &r);
	} else {
		json_object *ans = api_parse_object("POST /disks", &r);
		/* 1: made, but unreadable (a listing will show it). */
		if (!ans || pod_parse(ans, false, out) != 0) {
			memset(out, 0, sizeof *out);
			rc = 1;
		} else if (!out->id) {
			pod_free(out);
			rc = 1;
		}
		json_object_put(ans);
	}
	http_resp_free(&r);
	json_object_put(body);
	return rc;
}

int api_delete_disk(struct api *a, const char *id, const char *path)
{
	struct buf p;
	buf_init(&p);
	buf_adds(&p, "/disks/");
	http_escape_into(&p, id);
	struct http_resp r;
	http_resp_init(&r);
	int rc = 0;
	if (!http_call(a->http, "DELETE", p.data, NULL, "DELETE /disks/{id}",
		       &r) &&
	    !(r.curl == CURLE_OK && r.status == 404))
		rc = api_fail("rmdir", path, &r);
	http_resp_free(&r);
	buf_free(&p);
	return rc;
}

struct num disk_size(const struct pod *d)
{
	json_object *o = json_tokener_parse(d->json);
	struct num n = jx_num(o, "size");
	json_object_put(o);
	return n;
}

void disk_pod_ids(const struct pod *d, struct strlist *out)
{
	out->v = NULL;
	out->n = 0;
	json_object *o = json_tokener_parse(d->json);
	json_object *pods = jx_arr(o, "pods");
	size_t n = pods ? json_object_array_length(pods) : 0;
	out->v = xcalloc(n + 1, sizeof *out->v);
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(pods, i);
		if (json_object_is_type(it, json_type_string))
			out->v[out->n++] = xstrdup(json_object_get_string(it));
	}
	json_object_put(o);
}
