/* api.c — see api.h. */
#include "api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errmap.h"
#include "log.h"

json_object *api_parse_object(const char *what, const struct http_resp *r)
{
	if (r->status == 204 || !r->body.len)
		return json_object_new_object(); /* 204: counts as {} */
	enum json_tokener_error err = json_tokener_success;
	json_object *o = json_tokener_parse_verbose(r->body.data, &err);
	if (!o || !json_object_is_type(o, json_type_object)) {
		plog("parse", what, "answer is not a JSON object (%s)",
		     o ? "wrong type" : json_tokener_error_desc(err));
		stats_count(ST_API_ERRORS);
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* One GET whose 2xx body must be an object: 0 and *out, or -errno. */
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

static int fetch_offers(struct api *a, const char *endpoint_path,
			bool multinode, struct offer_list *out)
{
	size_t cap = out->n;
	size_t collected = 0;
	char endpoint[64];
	snprintf(endpoint, sizeof endpoint, "GET %s", endpoint_path);
	for (int page = 1; page <= API_MAX_PAGES; page++) {
		char path[128];
		snprintf(path, sizeof path, "%s?page=%d&page_size=%d",
			 endpoint_path, page, API_PAGE_SIZE);
		json_object *o;
		int rc = get_object(a, path, endpoint, &o);
		if (rc)
			return rc;
		json_object *items = jx_arr(o, "items");
		struct num total = jx_num(o, "totalCount");
		size_t len = items ? json_object_array_length(items) : 0;
		if (out->n + len > cap) {
			/* The first page says how many come: room for them
			 * all at once, not a doubling array's spare half. */
			size_t want = out->n + len;
			if (total.set && total.d > (double)want &&
			    total.d - (double)collected < 1e6)
				want = out->n +
				       (size_t)(total.d - (double)collected);
			cap = want;
			out->v = xrealloc(out->v, cap * sizeof *out->v);
		}
		for (size_t i = 0; i < len; i++) {
			json_object *it = json_object_array_get_idx(items, i);
			if (offer_parse(it, multinode, &out->v[out->n]) == 0)
				out->n++;
		}
		json_object_put(o);
		collected += len;
		if (len == 0 || !total.set || total.d <= (double)collected)
			return 0;
	}
	plog("list", endpoint_path, "stopped after %d pages", API_MAX_PAGES);
	return 0;
}

int api_list_offers(struct api *a, struct offer_list *out)
{
	out->v = NULL;
	out->n = 0;
	int rc = fetch_offers(a, "/availability/gpus", false, out);
	if (!rc)
		rc = fetch_offers(a, "/availability/multi-node", true, out);
	if (rc)
		offer_list_free(out);
	return rc;
}

void offer_list_free(struct offer_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		offer_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int api_list_pods(struct api *a, bool history, struct pod_list *out)
{
	/* The paths as the API documents them: a collection ends in '/'
	 * (the bare form only gets a redirect). */
	const char *base = history ? "/pods/history" : "/pods/";
	const char *endpoint = history ? "GET /pods/history" : "GET /pods";
	size_t cap = 0;
	long offset = 0;
	out->v = NULL;
	out->n = 0;
	for (int page = 0; page < API_MAX_PAGES; page++) {
		char path[128];
		snprintf(path, sizeof path, "%s?offset=%ld&limit=%d", base,
			 offset, API_PAGE_SIZE);
		json_object *o;
		int rc = get_object(a, path, endpoint, &o);
		if (rc) {
			pod_list_free(out);
			return rc;
		}
		json_object *data = jx_arr(o, "data");
		struct num total = jx_num(o, "total_count");
		struct num limit = jx_num(o, "limit");
		size_t len = data ? json_object_array_length(data) : 0;
		if (out->n + len > cap) {
			cap = (out->n + len) * 2;
			out->v = xrealloc(out->v, cap * sizeof *out->v);
		}
		for (size_t i = 0; i < len; i++) {
			json_object *it = json_object_array_get_idx(data, i);
			/* History holds disks, sandboxes and more: pods only.
			 */
			if (history && !history_row_is_pod(it) &&
			    !history_row_is_disk(it))
				continue;
			if (pod_parse(it, history, &out->v[out->n]) == 0)
				out->n++;
		}
		json_object_put(o);
		/* Advance by what came, not by the limit asked for: a server
		 * that clamps the limit must not make us skip pods. */
		offset += (long)len;
		if (len == 0)
			return 0;
		if (total.set && total.d > 0) {
			if (total.d <= (double)offset)
				return 0;
		} else if ((double)len < (limit.set && limit.d > 0
					      ? limit.d
					      : API_PAGE_SIZE)) {
			/* total_count is optional (default 0): without it, a
			 * short page is the last. */
			return 0;
		}
	}
	plog("list", base, "stopped after %d pages", API_MAX_PAGES);
	return 0;
}

int api_pods_status(struct api *a, const char *const *ids, size_t n,
		    struct pod_list *out)
{
	struct buf path;
	buf_init(&path);
	buf_adds(&path, "/pods/status");
	for (size_t i = 0; i < n; i++) {
		buf_adds(&path, i ? "&pod_ids=" : "?pod_ids=");
		http_escape_into(&path, ids[i]);
	}
	json_object *o;
	out->v = NULL;
	out->n = 0;
	int rc = get_object(a, path.data, "GET /pods/status", &o);
	buf_free(&path);
	if (rc)
		return rc;
	json_object *data = jx_arr(o, "data");
	size_t len = data ? json_object_array_length(data) : 0;
	out->v = xcalloc(len + 1, sizeof *out->v);
	for (size_t i = 0; i < len; i++)
		if (pod_parse(json_object_array_get_idx(data, i), false,
			      &out->v[out->n]) == 0 &&
		    out->v[out->n].id)
			out->n++;
		else
			pod_free(&out->v[out->n]);
	json_object_put(o);
	return 0;
}

int api_get_pod(struct api *a, const char *id, struct pod *out)
{
	struct buf path;
	buf_init(&path);
	buf_adds(&path, "/pods/");
	http_escape_into(&path, id);
	struct http_resp r;
	http_resp_init(&r);
	int rc;
	json_object *o = NULL;
	if (!http_call(a->http, "GET", path.data, NULL, "GET /pods/{id}", &r))
		rc = r.status == 404
			 ? -ENOENT
			 : api_fail("GET /pods/{id}", path.data, &r);
	else if (!(o = api_parse_object("GET /pods/{id}", &r)))
		rc = -EIO;
	else if ((rc = pod_parse(o, false, out)) < 0)
		rc = -EIO;
	json_object_put(o);
	http_resp_free(&r);
	buf_free(&path);
	return rc;
}

void pod_list_free(struct pod_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		pod_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Rows a page of the wallet holds at most (the API's maximum). */
#define WALLET_PAGE 100

static int wallet_page(struct api *a, size_t offset, json_object **o)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/billing/wallet?limit=%d&offset=%zu", WALLET_PAGE,
		   offset);
	if (a->team_id && *a->team_id) {
		buf_adds(&path, "&teamId=");
		http_escape_into(&path, a->team_id);
	}
	int rc = get_object(a, path.data, "GET /billing/wallet", o);
	buf_free(&path);
	return rc;
}

/* Whether rows remain after `offset` read, the last page `got` rows: up
 * to total_billings, or while pages come full when it is missing (advance
 * by what came: a server that clamps the limit skips no row). */
static bool wallet_more(size_t got, struct num total, size_t offset)
{
	if (!got)
		return false;
	return total.set ? total.d > (double)offset : got >= WALLET_PAGE;
}

int api_get_wallet(struct api *a, time_t since, struct wallet *out)
{
	json_object *o;
	int rc = wallet_page(a, 0, &o);
	if (rc)
		return rc;
	wallet_parse(o, out);
	json_object *rows = jx_arr(o, "recent_billings");
	size_t got = rows ? json_object_array_length(rows) : 0;
	struct num total = jx_num(o, "total_billings");
	json_object_put(o);
	time_t oldest = -1;
	for (size_t i = 0; i < out->n_rows; i++) {
		const struct billing_row *b = &out->rows[i];
		time_t at = b->last_billed != -1 ? b->last_billed : b->created;
		if (at != -1 && (oldest == -1 || at < oldest))
			oldest = at;
	}
	/* Newest rows first: page back, with no cap but the rows there are,
	 * while a full page's oldest row may still be newer than the oldest
	 * pod it could bill. */
	size_t offset = got;
	bool more = wallet_more(got, total, offset);
	while (more && since != -1 && oldest != -1 && oldest >= since) {
		if (wallet_page(a, offset, &o))
			break; /* what was read counts; the rest is unread */
		time_t before = oldest;
		got = wallet_add_rows(o, out, &oldest);
		json_object_put(o);
		offset += got;
		more = wallet_more(got, total, offset);
		/* With no total to end at, a page that reaches no older row
		 * (a server ignoring offset) ends it. */
		if (more && !total.set && oldest == before)
			break;
	}
	if (more && (since == -1 || oldest == -1 || oldest >= since))
		out->unread_until = oldest != -1 ? oldest : time(NULL);
	return 0;
}

/* One item of a log list: a string as it is, anything else as JSON; one
 * line, however the item ends. */
static void log_item(struct buf *out, json_object *it)
{
	const char *s = it && json_object_is_type(it, json_type_string)
			    ? json_object_get_string(it)
			    : json_object_to_json_string_ext(
				  it, JSON_C_TO_STRING_PLAIN |
					  JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = s ? strlen(s) : 0;
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	buf_add(out, s, len);
	buf_addc(out, '\n');
}

static void log_list(struct buf *out, json_object *arr)
{
	size_t n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++)
		log_item(out, json_object_array_get_idx(arr, i));
}

void api_log_text(const char *body, size_t len, struct buf *out)
{
	static const char *const list_keys[] = {"logs",	 "lines", "data",
						"items", "log",	  NULL};
	json_object *o = NULL;
	bool json = false; /* JSON's null parses as NULL too */
	if (len) {
		struct json_tokener *tok = json_tokener_new();
		o = json_tokener_parse_ex(tok, body, (int)len);
		/* The whole body, not a JSON prefix of some text. */
		size_t used = json_tokener_get_parse_end(tok);
		if (!o &&
		    json_tokener_get_error(tok) == json_tokener_continue) {
			o = json_tokener_parse_ex(tok, "", 1); /* the end */
			used = len;
		}
		while (used < len && strchr(" \t\r\n", body[used]) &&
		       body[used])
			used++;
		json = json_tokener_get_error(tok) == json_tokener_success &&
		       used >= len;
		if (!json) {
			json_object_put(o);
			o = NULL;
		}
		json_tokener_free(tok);
	}
	size_t start = out->len;
	if (!json) {
		buf_add(out, body, len); /* not JSON: the text itself */
	} else if (!o) {
		/* null: no log */
	} else if (json_object_is_type(o, json_type_string)) {
		buf_adds(out, json_object_get_string(o));
	} else if (json_object_is_type(o, json_type_array)) {
		log_list(out, o);
	} else if (json_object_is_type(o, json_type_object)) {
		json_object *v = NULL;
		for (int i = 0; list_keys[i] && !v; i++)
			if (!(v = jx_arr(o, list_keys[i])) &&
			    jx_str(o, list_keys[i]))
				v = json_object_object_get(o, list_keys[i]);
		/* Else the first list the object holds. */
		if (!v) {
			json_object_object_foreach(o, key, val)
			{
				(void)key;
				if (!v && val &&
				    json_object_is_type(val, json_type_array))
					v = val;
			}
		}
		if (!v)
			log_item(out, o);
		else if (json_object_is_type(v, json_type_array))
			log_list(out, v);
		else
			buf_adds(out, json_object_get_string(v));
	} else if (!json_object_is_type(o, json_type_null)) {
		log_item(out, o);
	}
	json_object_put(o);
	if (out->len > start && out->data[out->len - 1] != '\n')
		buf_addc(out, '\n');
}

int api_pod_log(struct api *a, const char *id, int tail, struct buf *out)
{
	struct buf path;
	buf_init(&path);
	buf_adds(&path, "/pods/");
	http_escape_into(&path, id);
	buf_printf(&path, "/log?tail=%d", tail);
	struct http_resp r;
	http_resp_init(&r);
	int rc = 0;
	if (http_call(a->http, "GET", path.data, NULL, "GET /pods/{id}/log",
		      &r))
		api_log_text(r.body.data ? r.body.data : "", r.body.len, out);
	else
		rc = api_fail("GET /pods/{id}/log", path.data, &r);
	http_resp_free(&r);
	buf_free(&path);
	return rc;
}
