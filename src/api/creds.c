/* creds.c — see creds.h. */
#include "creds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <strings.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "model.h"
#include "util.h"

/* A copy of the key in its own pages, left out of core dumps. */
static char *secret_dup(const char *s)
{
	size_t len = strlen(s);
	long page = sysconf(_SC_PAGESIZE);
	size_t size =
	    ((len + 1 + (size_t)page - 1) / (size_t)page) * (size_t)page;
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		abort();
	madvise(p, size, MADV_DONTDUMP);
	memcpy(p, s, len + 1);
	return p;
}

static void secret_free(char *p)
{
	if (!p)
		return;
	size_t len = strlen(p);
	long page = sysconf(_SC_PAGESIZE);
	size_t size =
	    ((len + 1 + (size_t)page - 1) / (size_t)page) * (size_t)page;
	explicit_bzero(p, len);
	munmap(p, size);
}

char *normalize_base_url(const char *url)
{
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	if (n >= 7 && !strncmp(url + n - 7, "/api/v1", 7))
		n -= 7;
	while (n && url[n - 1] == '/')
		n--;
	return xstrndup(url, n);
}

static const char *env_nonblank(const char *name)
{
	const char *v = getenv(name);
	if (!v)
		return NULL;
	for (const char *p = v; *p; p++)
		if (*p != ' ' && *p != '\t')
			return v;
	return NULL;
}

static void take(char **slot, const char *value)
{
	if (!value || !*value)
		return;
	free(*slot);
	*slot = xstrdup(value);
}

static char *home_path(const char *rel)
{
	const char *home = getenv("HOME");
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s/%s", home && *home ? home : "/root", rel);
	return buf_steal(&b);
}

/* Reads config.json-shaped keys out of one file, if it exists. */
static void read_config(const char *path, char **key, char **team, char **base,
			char **ssh, bool warn_perms)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return;
	json_object *o = json_object_from_file(path);
	if (!o) {
		plog("config", path, "not valid JSON; ignored");
		return;
	}
	const char *k = jx_str(o, "api_key");
	if (k && *k) {
		free(*key);
		*key = xstrdup(k);
		if (warn_perms && (st.st_mode & 077))
			plog("config", path,
			     "holds the API key and is readable by others "
			     "(chmod 600 it)");
	}
	take(team, jx_str(o, "team_id"));
	take(base, jx_str(o, "base_url"));
	if (ssh)
		take(ssh, jx_str(o, "ssh_key_path"));
	json_object_put(o);
}

static int read_key_file(const char *path, char **key, char *err, size_t n)
{
	struct stat st;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, n, "key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
		fclose(f);
		snprintf(err, n,
			 "key file %s is readable by others; refusing it "
			 "(chmod 600 %s)",
			 path, path);
		return -1;
	}
	char line[4096];
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		snprintf(err, n, "key file %s is empty", path);
		return -1;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	*key = xstrdup(line);
	explicit_bzero(line, sizeof line);
	return 0;
}

static char *expand_tilde(const char *p)
{
	if (p[0] == '~' && (p[1] == '/' || !p[1]))
		return home_path(p[1] ? p + 2 : "");
	return xstrdup(p);
}

/* PRIME_CONTEXT=NAME lays a saved environment over config.json in memory,
 * as the Prime CLI's load_environment(persist=False) does: `production`
 * resets the base URL and the team; a saved one replaces the key when it
 * has an api_key (even "", which means no key), and always the team
 * (absent, null or "" mean the personal account) and the base URL (absent
 * or null mean the default). True when it replaced the key. */
static bool overlay_context(char **key, char **team, char **base)
{
	const char *ctx = getenv("PRIME_CONTEXT");
	if (!ctx || !*ctx)
		return false;
	if (!strcasecmp(ctx, "production")) {
		free(*team);
		free(*base);
		*team = *base = NULL;
		return false;
	}
	if (strspn(ctx, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789_-") != strlen(ctx)) {
		plog("config", "PRIME_CONTEXT",
		     "not a context name ([A-Za-z0-9_-]); ignored");
		return false;
	}
	struct buf b;
	buf_init(&b);
	buf_printf(&b, ".prime/environments/%s.json", ctx);
	char *path = home_path(b.data);
	buf_free(&b);
	struct stat st;
	json_object *o =
	    stat(path, &st) == 0 ? json_object_from_file(path) : NULL;
	bool replaced = false;
	if (!o || !json_object_is_type(o, json_type_object)) {
		plog("config", path,
		     "PRIME_CONTEXT names no readable saved environment; "
		     "~/.prime/config.json is used as it is");
	} else {
		json_object *k;
		if (json_object_object_get_ex(o, "api_key", &k)) {
			const char *v = jx_str(o, "api_key");
			if (*key)
				explicit_bzero(*key, strlen(*key));
			free(*key);
			*key = v && *v ? xstrdup(v) : NULL;
			replaced = true;
			if (*key && (st.st_mode & 077))
				plog("config", path,
				     "holds the API key and is readable by "
				     "others (chmod 600 it)");
		}
		const char *t = jx_str(o, "team_id"),
			   *u = jx_str(o, "base_url");
		free(*team);
		*team = t && *t ? xstrdup(t) : NULL;
		free(*base);
		*base = u && *u ? xstrdup(u) : NULL;
	}
	json_object_put(o);
	free(path);
	return replaced;
}

int creds_load(struct creds *c, const char *key_file, char *err, size_t errlen)
{
	char *key = NULL, *team = NULL, *base = NULL, *ssh = NULL;
	memset(c, 0, sizeof *c);

	char *cfg = home_path(".prime/config.json");
	read_config(cfg, &key, &team, &base, &ssh, true);
	const char *source = key ? "~/.prime/config.json" : NULL;
	free(cfg);
	if (overlay_context(&key, &team, &base))
		source = key ? "PRIME_CONTEXT environment" : NULL;
	const char *v;
	if ((v = getenv("PRIME_API_KEY")) && *v) {
		take(&key, v);
		source = "PRIME_API_KEY";
	}
	if ((v = env_nonblank("PRIME_TEAM_ID")))
		take(&team, v);
	if ((v = getenv("PRIME_BASE_URL")) && *v)
		take(&base, v);
	if ((v = getenv("PRIME_API_BASE_URL")) && *v)
		take(&base, v);
	if ((v = getenv("PRIME_SSH_KEY_PATH")) && *v)
		take(&ssh, v);

	if (key_file) {
		char *from_file = NULL;
		if (read_key_file(key_file, &from_file, err, errlen) != 0) {
			if (key)
				explicit_bzero(key, strlen(key));
			free(key);
			free(team);
			free(base);
			free(ssh);
			return -1;
		}
		if (key)
			explicit_bzero(key, strlen(key));
		free(key);
		key = from_file;
		source = "key_file option";
	}

	if (key) {
		c->api_key = secret_dup(key);
		explicit_bzero(key, strlen(key));
		free(key);
	}
	c->team_id = team;
	c->base_url = normalize_base_url(base ? base : PRIME_DEFAULT_BASE);
	free(base);
	c->ssh_key_path = ssh ? expand_tilde(ssh) : home_path(".ssh/id_rsa");
	free(ssh);
	c->source = xstrdup(source ? source : "none");
	return 0;
}

void creds_free(struct creds *c)
{
	secret_free(c->api_key);
	free(c->team_id);
	free(c->base_url);
	free(c->ssh_key_path);
	free(c->source);
	memset(c, 0, sizeof *c);
}

void creds_scrub_environ(void)
{
	char *v = getenv("PRIME_API_KEY");
	if (v)
		explicit_bzero(v, strlen(v));
	unsetenv("PRIME_API_KEY");
}

static bool loopback_host(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

int base_url_check(const char *url, char *err, size_t errlen)
{
	if (!strncasecmp(url, "https://", 8))
		return 0;
	if (strncasecmp(url, "http://", 7)) {
		snprintf(err, errlen,
			 "base URL %s: only https:// is used (or plain "
			 "http:// to a loopback address)",
			 url);
		return -1;
	}
	/* http://[userinfo@]host[:port][/path]: the host, brackets off. */
	const char *h = url + 7;
	size_t auth = strcspn(h, "/?#");
	const char *at = memchr(h, '@', auth);
	if (at) {
		auth -= (size_t)(at + 1 - h);
		h = at + 1;
	}
	char host[256] = "";
	size_t n;
	if (*h == '[') {
		const char *close = memchr(h, ']', auth);
		n = close ? (size_t)(close - h - 1) : 0;
		h++;
	} else {
		n = strcspn(h, ":/?#");
	}
	if (n < sizeof host) {
		memcpy(host, h, n);
		host[n] = '\0';
	}
	if (loopback_host(host))
		return 0;
	snprintf(err, errlen,
		 "base URL %s: refusing to send the API key over plain http "
		 "to a host that is not loopback (use https://)",
		 url);
	return -1;
}
