/* test_pending.c — the records of requests in flight (pending.h), without
 * a mount: what a second pending_new (a remount) finds, the overlay of a
 * listing (a placeholder shown, settled by name or by the answer's id, an
 * unwanted one hidden), the settle hook, the offer kept by id, and a
 * corrupt record skipped with a line in `log`. The behaviour on a real
 * mount is tests/test_placeholders.py's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pending.h"
#include "t.h"

static char root[] = "/tmp/primefs-pending-XXXXXX";

/* The store over root, as main opens it (a directory fd; the store keeps
 * its own). */
static struct pending *open_pending(void)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct pending *p = pending_new(root, fd);
	if (fd >= 0)
		close(fd);
	return p;
}

static void put_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fputs(data, f);
	fclose(f);
}

static bool exists(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", root, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

static mode_t mode_of(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", root, rel);
	struct stat st;
	return lstat(p, &st) == 0 ? st.st_mode & 0777 : 0;
}

/* A listed pod, as the API would list it. */
static void listed(struct pod_list *l, const char *id, const char *name)
{
	char text[256];
	snprintf(text, sizeof text,
		 "{\"id\":\"%s\",\"name\":\"%s\",\"status\":\"ACTIVE\"}", id,
		 name);
	json_object *o = json_tokener_parse(text);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	if (pod_parse(o, false, &l->v[l->n]) == 0)
		l->n++;
	json_object_put(o);
}

static const struct pod *by_name(const struct pod_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].name && !strcmp(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

struct seen {
	int n;
	char names[8][64], ids[8][64];
	bool placeholder[8], unwanted[8];
};

static void hook(void *arg, const struct pending_settled *s)
{
	struct seen *w = arg;
	if (w->n >= 8)
		return;
	snprintf(w->names[w->n], 64, "%s", s->name);
	snprintf(w->ids[w->n], 64, "%s", s->id);
	w->placeholder[w->n] = s->was_placeholder;
	w->unwanted[w->n] = s->unwanted != NULL;
	w->n++;
}

static void test_round_trip(void)
{
	struct pending *p = open_pending();
	CHECK(pending_add(p, "a", "H100_80GB/x-1") == 0);
	CHECK(pending_add(p, "a", NULL) == -EEXIST);
	CHECK(pending_add(p, "b", NULL) == 0);
	CHECK(pending_add(p, "x.tmp", NULL) == 0); /* a name like a temp's */
	CHECK(pending_add(p, "c", "H100_80GB/y-1") == 0);
	CHECK(exists("pending/a") && mode_of("pending/a") == 0600);
	CHECK(mode_of("pending") == 0700);
	CHECK(pending_state(p, "a", NULL) == PENDING_PLACEHOLDER);
	/* c is answered: it has an id, and its offer is kept by it. */
	json_object *o = json_tokener_parse(
	    "{\"id\":\"cid1\",\"name\":\"c\",\"status\":\"PROVISIONING\"}");
	struct pod answer;
	CHECK(pod_parse(o, false, &answer) == 0);
	json_object_put(o);
	pending_answered(p, "c", &answer);
	pod_free(&answer);
	char *id;
	CHECK(pending_state(p, "c", &id) == PENDING_ANSWERED);
	CHECK(id && !strcmp(id, "cid1"));
	free(id);
	CHECK(pending_unwanted(p, "b", "rmdir"));
	CHECK(!pending_unwanted(p, "c", "rmdir")); /* it has an id */
	CHECK(pending_hidden(p) == 1);
	pending_free(p);

	/* A remount finds the same. */
	p = open_pending();
	CHECK(pending_count(p) == 4);
	CHECK(pending_state(p, "x.tmp", NULL) == PENDING_PLACEHOLDER);
	CHECK(pending_drop(p, "x.tmp"));
	CHECK(pending_state(p, "a", NULL) == PENDING_PLACEHOLDER);
	CHECK(pending_state(p, "b", NULL) == PENDING_UNWANTED);
	CHECK(pending_state(p, "c", &id) == PENDING_ANSWERED);
	CHECK(id && !strcmp(id, "cid1"));
	free(id);
	struct pod shown;
	CHECK(pending_pod(p, "a", &shown));
	CHECK(!strcmp(shown.id, "a") && !strcmp(pod_status(&shown), "PENDING"));
	CHECK(!strstr(shown.json, "\"id\":")); /* no id: a placeholder */
	pod_free(&shown);
	CHECK(!pending_pod(p, "b", &shown)); /* unwanted: not in pods/ */

	/* A listing that shows none of them settles nothing; a's placeholder
	 * and c's answer are added, b is not. */
	struct seen w = {0};
	pending_set_hook(p, hook, &w);
	struct pod_list l = {NULL, 0};
	listed(&l, "other", "zzz");
	pending_overlay(p, &l);
	pending_settle(p);
	CHECK(l.n == 3 && by_name(&l, "a") && by_name(&l, "c"));
	CHECK(!by_name(&l, "b"));
	CHECK(w.n == 0);
	pod_list_free(&l);

	/* One that shows a by name, b by name and c by id settles all. */
	l = (struct pod_list){NULL, 0};
	listed(&l, "aid", "a");
	listed(&l, "bid", "b");
	listed(&l, "cid1", "c-renamed");
	pending_overlay(p, &l);
	CHECK(l.n == 3); /* nothing added: the listing stands for them */
	CHECK(pending_state(p, "a", &id) == PENDING_SETTLED);
	CHECK(id && !strcmp(id, "aid"));
	free(id);
	pending_settle(p);
	pod_list_free(&l);
	CHECK(w.n == 3);
	for (int i = 0; i < w.n; i++) {
		if (!strcmp(w.names[i], "a"))
			CHECK(!strcmp(w.ids[i], "aid") && w.placeholder[i] &&
			      !w.unwanted[i]);
		else if (!strcmp(w.names[i], "b"))
			CHECK(!strcmp(w.ids[i], "bid") && w.unwanted[i]);
		else
			CHECK(!strcmp(w.ids[i], "cid1") && !w.placeholder[i]);
	}
	CHECK(pending_count(p) == 0);
	CHECK(!exists("pending/a") && !exists("pending/b"));
	struct buf b;
	buf_init(&b);
	CHECK(pending_offer(p, "aid", &b) && !strcmp(b.data, "H100_80GB/x-1"));
	buf_reset(&b);
	CHECK(!pending_offer(p, "bid", &b)); /* none was recorded */
	CHECK(pending_offer(p, "cid1", &b) && !strcmp(b.data, "H100_80GB/y-1"));
	buf_free(&b);
	pending_gone(p, "cid1");
	CHECK(exists("offers/cid1")); /* history/ shows it too */
	pending_set_hook(p, NULL, NULL);
	pending_free(p);
}

static void test_refused_and_corrupt(void)
{
	struct pending *p = open_pending();
	CHECK(pending_add(p, "r", NULL) == 0);
	CHECK(pending_drop(p, "r"));
	CHECK(!exists("pending/r"));
	CHECK(pending_state(p, "r", NULL) == PENDING_NONE);
	/* An answered one whose DELETE found nothing: unwanted, hidden. */
	CHECK(pending_add(p, "u", NULL) == 0);
	json_object *o = json_tokener_parse("{\"id\":\"uid\",\"name\":\"u\"}");
	struct pod answer;
	CHECK(pod_parse(o, false, &answer) == 0);
	json_object_put(o);
	pending_answered(p, "u", &answer);
	pod_free(&answer);
	struct pod shown;
	CHECK(pending_pod(p, "u", &shown));
	pod_free(&shown);
	CHECK(pending_unwanted_id(p, "uid", "rmdir"));
	CHECK(!pending_unwanted_id(p, "nope", "rmdir"));
	CHECK(!pending_pod(p, "u", &shown));
	CHECK(pending_hidden(p) == 1);
	CHECK(pending_drop(p, "u"));
	pending_free(p);

	char path[512];
	snprintf(path, sizeof path, "%s/pending/bad", root);
	put_file(path, "{\"name\": \"bad\", \"sent\": ");
	snprintf(path, sizeof path, "%s/pending/other", root);
	put_file(path, "{\"name\": \"not-other\"}");
	snprintf(path, sizeof path, "%s/pending/good", root);
	put_file(path, "{\"name\": \"good\", \"sent\": 1, \"id\": null}");
	p = open_pending();
	CHECK(pending_count(p) == 1);
	CHECK(pending_state(p, "good", NULL) == PENDING_PLACEHOLDER);
	pending_free(p);
	struct buf lg;
	buf_init(&lg);
	log_render(&lg);
	CHECK(strstr(lg.data, "/pending/bad: skipped an unreadable record"));
	CHECK(strstr(lg.data, "/pending/other: skipped an unreadable record"));
	buf_free(&lg);
}

int main(void)
{
	if (!mkdtemp(root))
		return 1;
	log_init(1000, false);
	test_round_trip();
	test_refused_and_corrupt();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		return 1;
	log_shutdown();
	return t_done();
}
