/*
 * lsan_on_signal: a preloadable helper that makes a long-running program
 * built with LeakSanitizer report its leaks when it is told to stop.
 *
 * LeakSanitizer checks at exit, but a client such as `nanomq_cli sub` never
 * exits by itself: the harness stops it with a signal, which kills it
 * before any check runs. Preloaded (LD_PRELOAD), this library catches the
 * stop signal (SIGTERM unless MQTLS_LSAN_SIGNAL names another number),
 * runs LeakSanitizer's check on a thread of its own, then dies of the same
 * signal, so the exit status still says "stopped", not "crashed".
 *
 * The handler only writes one byte to a pipe (async-signal-safe); the check
 * runs on a thread started before main, so it never runs inside an
 * interrupted malloc. Without a sanitizer runtime in the process the
 * library does nothing but re-raise the signal.
 *
 * mqtls builds it on demand: cc -shared -fPIC -O1 -o lsan_on_signal.so lsan_on_signal.c -lpthread
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Provided by the sanitizer runtime (ASan or standalone LSan), if any. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static int wake[2] = { -1, -1 };
static int stop_signal = SIGTERM;

static void
on_signal(int sig)
{
	char b = (char) sig;
	int saved = errno;
	if (write(wake[1], &b, 1) != 1) {
		/* No thread to run the check: die as the signal asks. */
		signal(sig, SIG_DFL);
		raise(sig);
	}
	errno = saved;
}

static void *
mqtls_lsan_checker_thread(void *arg)
{
	char b;
	(void) arg;
	while (read(wake[0], &b, 1) != 1) {
		if (errno != EINTR) {
			return NULL;
		}
	}
	if (__lsan_do_recoverable_leak_check != NULL) {
		fprintf(stderr, "mqtls lsan_on_signal: signal %d: running LeakSanitizer\n", stop_signal);
		__lsan_do_recoverable_leak_check();
	}
	fflush(stderr);
	signal(stop_signal, SIG_DFL);
	/* Unblock in case the program blocked it, then die of it. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, stop_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), stop_signal);
	return NULL;
}

__attribute__((constructor)) static void
install(void)
{
	const char *s = getenv("MQTLS_LSAN_SIGNAL");
	if (s != NULL && atoi(s) > 0 && atoi(s) < NSIG) {
		stop_signal = atoi(s);
	}
	if (pipe(wake) != 0) {
		return;
	}
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, mqtls_lsan_checker_thread, NULL) != 0) {
		return;
	}
	struct sigaction sa;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(stop_signal, &sa, NULL);
}
