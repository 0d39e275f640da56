/* t_server.c — the unit tests' in-process HTTP server (see t_server.h):
 * reads a request's head, asks the script for the answer, waits while the
 * test holds answers, sends it with Connection: close. */
#include "t_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static bool hold;
static t_script_fn script;
static int requests, answered;
static char last_path[4096];
static int listen_fd;

static void *serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char req[8192];
	size_t len = 0;
	while (len < sizeof req - 1) {
		ssize_t n = read(fd, req + len, sizeof req - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[len] = '\0';
	char method[16] = "", path[4096] = "";
	sscanf(req, "%15s %4095s", method, path);
	/* Counted and answered in one step: a test that sees the count
	 * can set the next answer without changing this one. */
	struct t_answer a = {200, "", "{}", 0};
	pthread_mutex_lock(&mu);
	int nth = requests++;
	snprintf(last_path, sizeof last_path, "%s", path);
	if (script)
		script(path, nth, &a);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	while (hold && pthread_cond_timedwait(&released, &mu, &until) == 0)
		;
	pthread_mutex_unlock(&mu);
	sleep_seconds(a.delay);
	char head[512];
	int hl = snprintf(head, sizeof head,
			  "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
			  a.status, strlen(a.body), a.headers);
	/* A client that gave up has closed: no SIGPIPE for the test. */
	if (send(fd, head, (size_t)hl, MSG_NOSIGNAL) < 0 ||
	    send(fd, a.body, strlen(a.body), MSG_NOSIGNAL) < 0)
		perror("send");
	close(fd);
	pthread_mutex_lock(&mu);
	answered++;
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		pthread_create(&t, NULL, serve_one, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

int t_server_start(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	bind(listen_fd, (struct sockaddr *)&sa, sizeof sa);
	listen(listen_fd, 64);
	getsockname(listen_fd, (struct sockaddr *)&sa, &sl);
	pthread_t t;
	pthread_create(&t, NULL, serve, NULL);
	pthread_detach(t);
	return ntohs(sa.sin_port);
}

void t_server_script(t_script_fn fn)
{
	pthread_mutex_lock(&mu);
	script = fn;
	requests = answered = 0;
	pthread_mutex_unlock(&mu);
}

void t_server_hold(bool on)
{
	pthread_mutex_lock(&mu);
	hold = on;
	pthread_cond_broadcast(&released);
	pthread_mutex_unlock(&mu);
}

static int counter(const int *c)
{
	pthread_mutex_lock(&mu);
	int v = *c;
	pthread_mutex_unlock(&mu);
	return v;
}

int t_server_requests(void)
{
	return counter(&requests);
}

int t_server_answered(void)
{
	return counter(&answered);
}

const char *t_server_last_path(void)
{
	static char copy[sizeof last_path];
	pthread_mutex_lock(&mu);
	snprintf(copy, sizeof copy, "%s", last_path);
	pthread_mutex_unlock(&mu);
	return copy;
}
