/* errmap.c — see errmap.h. */
#include "errmap.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "log.h"
#include "model.h"

/* The API's own ErrorResponse (openapi: {"errors": [{param, details}]}):
 * "param: details; ...". */
static void describe_errors(json_object *errors, struct buf *msg)
{
	size_t n = json_object_array_length(errors);
	for (size_t i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(errors, i);
		const char *param = jx_str(item, "param");
		const char *details = jx_str(item, "details");
		buf_printf(msg, "%s%s%s%s", i ? "; " : "",
			   param && *param ? param : "",
			   param && *param ? ": " : "",
			   details ? details : "(no details)");
	}
}

/* The error bodies: the API's {"errors": [{param, details}]}, and
 * FastAPI's {"detail": "text"} or {"detail": [{loc, msg}, ...]}. */
static void describe_detail(const struct http_resp *r, struct buf *msg)
{
	json_object *o = r->body.len ? json_tokener_parse(r->body.data) : NULL;
	json_object *detail = NULL;
	json_object *errors = jx_arr(o, "errors");
	if (o && json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, "detail", &detail);
	if (errors && json_object_array_length(errors)) {
		describe_errors(errors, msg);
	} else if (detail && json_object_is_type(detail, json_type_string)) {
		buf_adds(msg, json_object_get_string(detail));
	} else if (detail && json_object_is_type(detail, json_type_array)) {
		size_t n = json_object_array_length(detail);
		buf_adds(msg, "validation failed:");
		for (size_t i = 0; i < n; i++) {
			json_object *item =
			    json_object_array_get_idx(detail, i);
			json_object *loc = jx_arr(item, "loc");
			const char *text = jx_str(item, "msg");
			buf_adds(msg, i ? "; " : " ");
			size_t parts = loc ? json_object_array_length(loc) : 0;
			bool first = true;
			for (size_t j = 0; j < parts; j++) {
				json_object *p =
				    json_object_array_get_idx(loc, j);
				const char *s = json_object_get_string(p);
				if (!s || (j == 0 && !strcmp(s, "body")))
					continue;
				if (!first)
					buf_addc(msg, '.');
				buf_adds(msg, s);
				first = false;
			}
			buf_printf(msg, "%s%s", first ? "" : ": ",
				   text ? text : "(no message)");
		}
	} else if (detail) {
		buf_adds(msg, json_object_to_json_string(detail));
	} else if (r->body.len) {
		/* Not JSON: a proxy's page, say. Enough of it to recognise. */
		size_t n = r->body.len < 200 ? r->body.len : 200;
		buf_add(msg, r->body.data, n);
	}
	json_object_put(o);
}

int http_errno(const struct http_resp *r, struct buf *msg)
{
	if (r->no_key) {
		buf_adds(msg, "no API key configured: set PRIME_API_KEY, run "
			      "'prime login', or mount with -o key_file=FILE");
		return EACCES;
	}
	if (r->interrupted) {
		buf_adds(msg, "not sent: interrupted while waiting out the "
			      "API's Retry-After");
		return EINTR;
	}
	if (r->held == BUDGET_HELD) {
		buf_printf(msg,
			   "not sent: the API holds calls for %.0f s more "
			   "(Retry-After)",
			   r->held_for);
		return EAGAIN;
	}
	if (r->held == BUDGET_SPENT) {
		buf_printf(
		    msg,
		    "not sent: the hour's call budget (-o api_budget) is "
		    "spent for %.0f s more",
		    r->held_for);
		return EAGAIN;
	}
	if (r->too_large) {
		buf_printf(msg, "answer larger than %u MiB; refused",
			   HTTP_MAX_BODY >> 20);
		return EIO;
	}
	if (r->curl != CURLE_OK) {
		buf_printf(msg, "%s",
			   r->error[0] ? r->error
				       : curl_easy_strerror(r->curl));
		if (r->attempts > 1)
			buf_printf(msg, " (after %d attempts)", r->attempts);
		switch (r->curl) {
		case CURLE_OPERATION_TIMEDOUT:
			return ETIMEDOUT;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
			buf_adds(msg, " [TLS verification failed; cafile= "
				      "names a CA to trust]");
			return EIO;
		default:
			return EIO;
		}
	}
	buf_printf(msg, "HTTP %ld: ", r->status);
	if (r->status == 401)
		buf_adds(msg, "API key unauthorized (check PRIME_API_KEY or "
			      "run 'prime login'): ");
	else if (r->status == 402)
		buf_adds(msg, "payment required (check billing): ");
	describe_detail(r, msg);
	if (r->attempts > 1)
		buf_printf(msg, " (after %d attempts)", r->attempts);
	switch (r->status) {
	case 401:
	case 403:
		return EACCES;
	case 402:
		return EDQUOT;
	case 404:
		return ENOENT;
	case 400:
	case 422:
		return EINVAL;
	case 409:
		return EEXIST;
	case 429:
		return EAGAIN;
	default:
		return EIO;
	}
}

int api_fail(const char *op, const char *path, const struct http_resp *r)
{
	struct buf msg;
	buf_init(&msg);
	int e = http_errno(r, &msg);
	plog(op, path, "%s", msg.data ? msg.data : "failed");
	stats_count(ST_API_ERRORS);
	buf_free(&msg);
	return -e;
}
