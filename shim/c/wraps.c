/*
 * The C side of mqtls-shim: `__wrap_` versions of NanoNNG's message and aio
 * functions, for a target linked with -Wl,--wrap=NAME for each NAME of
 * wrapped.txt.
 *
 * Each wrapper takes its call stack (a few return addresses, by frame
 * pointers), tells the Rust ledger (src/ffi.rs) what is about to happen or
 * just happened, and calls the real function. Which side of the real call a
 * hook sits on matters under concurrency:
 *   - a message free, an aio finish or schedule is recorded BEFORE the real
 *     call: once a message is freed its address can be reused by another
 *     thread's allocation, and once an aio is finished (or armed) its
 *     callback may run and begin the next operation at once;
 *   - an allocation or a begin is recorded AFTER it, when the pointer or the
 *     result exists.
 * No lock of the shim is held across a real call (a synchronous finish runs
 * the callback inline, and that callback calls back into the shim).
 *
 * Nothing here depends on NanoNNG's headers: the types are opaque, and the
 * only NanoNNG functions called are accessors that read a live message's
 * packet type.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

typedef struct nni_msg  nni_msg;
typedef struct nni_aio  nni_aio;
typedef void (*nni_cb)(void *);
typedef void (*nni_aio_cancel_fn)(nni_aio *, void *, int);
typedef int32_t  nng_duration;
typedef uint64_t nni_time;
typedef void    *nni_aio_completions;

/* The call stack of one wrapped call: return addresses, innermost first
 * (the wrapper's caller, its caller...), 0 where the walk stopped. Keep in
 * step with `Stack` in src/sites.rs. */
#define MQTLS_DEPTH 4
typedef struct {
	uintptr_t pc[MQTLS_DEPTH];
} mqtls_stack;

/* ---- the Rust side (src/ffi.rs) ---------------------------------------- */

typedef uint8_t (*mqtls_kind_fn)(nni_msg *);
extern void     mqtls_shim_init(mqtls_kind_fn kind);
extern void     mqtls_shim_report(const char *trigger);
extern int      mqtls_shim_stop_signals(int *out, int max);
extern int      mqtls_shim_enabled(void);

extern void     mqtls_shim_msg_alloc(nni_msg *, const mqtls_stack *);
extern void     mqtls_shim_msg_free(nni_msg *, const mqtls_stack *);
extern void     mqtls_shim_msg_free_done(void);
extern void     mqtls_shim_msg_clone(nni_msg *, const mqtls_stack *);
extern void     mqtls_shim_msg_dup(nni_msg *dup, const nni_msg *src, const mqtls_stack *);
extern uint64_t mqtls_shim_msg_replace_begin(nni_msg *, int predict_free, const mqtls_stack *);
extern void     mqtls_shim_msg_replace_end(nni_msg *in, uint64_t token, nni_msg *out, const mqtls_stack *);

extern void     mqtls_shim_aio_init(nni_aio *, const mqtls_stack *);
extern uint64_t mqtls_shim_aio_free_begin(nni_aio *, const mqtls_stack *);
extern void     mqtls_shim_aio_free_end(nni_aio *, uint64_t token);
extern void     mqtls_shim_aio_reap(nni_aio *, const mqtls_stack *);
extern void     mqtls_shim_aio_set_msg(nni_aio *, nni_msg *, const mqtls_stack *);
extern void     mqtls_shim_aio_get_msg(nni_aio *, nni_msg *, const mqtls_stack *);
extern void     mqtls_shim_aio_begin(nni_aio *, int rv, const mqtls_stack *);
extern void     mqtls_shim_aio_schedule(nni_aio *, const mqtls_stack *);
extern void     mqtls_shim_aio_scheduled(nni_aio *, int rv, int has_cancel);
extern void     mqtls_shim_aio_finish(nni_aio *, int rv, nni_msg *msg, const mqtls_stack *);
extern void     mqtls_shim_aio_wait(nni_aio *, const mqtls_stack *);
extern void     mqtls_shim_aio_waited(nni_aio *);
extern void     mqtls_shim_aio_cancel(nni_aio *, const mqtls_stack *);
extern void     mqtls_shim_aio_timeout(nni_aio *, int64_t relative_ms, int64_t absolute_ms);

/* ---- the real NanoNNG functions ---------------------------------------- */

extern int      __real_nni_msg_alloc(nni_msg **, size_t);
extern void     __real_nni_msg_free(nni_msg *);
extern void     __real_nni_msg_clone(nni_msg *);
extern int      __real_nni_msg_dup(nni_msg **, const nni_msg *);
extern nni_msg *__real_nni_msg_unique(nni_msg *);
extern nni_msg *__real_nni_msg_pull_up(nni_msg *);

extern void     __real_nni_aio_init(nni_aio *, nni_cb, void *);
extern void     __real_nni_aio_fini(nni_aio *);
extern int      __real_nni_aio_alloc(nni_aio **, nni_cb, void *);
extern void     __real_nni_aio_free(nni_aio *);
extern void     __real_nni_aio_reap(nni_aio *);
extern void     __real_nni_aio_set_msg(nni_aio *, nni_msg *);
extern nni_msg *__real_nni_aio_get_msg(nni_aio *);
extern int      __real_nni_aio_begin(nni_aio *);
extern int      __real_nni_aio_schedule(nni_aio *, nni_aio_cancel_fn, void *);
extern void     __real_nni_aio_finish(nni_aio *, int, size_t);
extern void     __real_nni_aio_finish_sync(nni_aio *, int, size_t);
extern void     __real_nni_aio_finish_error(nni_aio *, int);
extern void     __real_nni_aio_finish_msg(nni_aio *, nni_msg *);
extern void     __real_nni_aio_completions_add(nni_aio_completions *, nni_aio *, int, size_t);
extern void     __real_nni_aio_wait(nni_aio *);
extern void     __real_nni_aio_abort(nni_aio *, int);
extern void     __real_nni_aio_close(nni_aio *);
extern void     __real_nni_aio_stop(nni_aio *);
extern void     __real_nni_aio_set_timeout(nni_aio *, nng_duration);
extern void     __real_nni_aio_set_expire(nni_aio *, nni_time);

/* Accessors (not wrapped) for a live message's MQTT packet type. */
extern size_t   nni_msg_header_len(const nni_msg *);
extern void    *nni_msg_header(nni_msg *);
extern void    *nni_msg_get_proto_data(nni_msg *);
extern int      nni_mqtt_msg_get_packet_type(nni_msg *);
extern bool     nni_msg_shared(nni_msg *);

/* The sanitizer runtime, when the target has one. */
extern void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

/* ---- call stacks -------------------------------------------------------- */

static __thread uintptr_t stack_lo, stack_hi;

static void
stack_bounds(void)
{
	pthread_attr_t attr;
	void          *addr = NULL;
	size_t         size = 0;

	stack_hi = 1; /* tried: without bounds, only the caller is taken */
	if (pthread_getattr_np(pthread_self(), &attr) != 0) {
		return;
	}
	if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size > 0) {
		stack_lo = (uintptr_t) addr;
		stack_hi = (uintptr_t) addr + size;
	}
	pthread_attr_destroy(&attr);
}

/* Follows saved frame pointers from the wrapper's own frame. A frame must
 * lie on this thread's stack, above the previous one and aligned, or the
 * walk stops: code built without frame pointers ends it early, never
 * reads outside the stack. */
static void
walk(uintptr_t *fp, mqtls_stack *s)
{
	if (stack_hi == 0) {
		stack_bounds();
	}
	for (int i = 1; i < MQTLS_DEPTH; i++) {
		uintptr_t next = fp[0];
		if (next <= (uintptr_t) fp || (next & 7) != 0 || next < stack_lo ||
		    next + 2 * sizeof(uintptr_t) > stack_hi) {
			for (; i < MQTLS_DEPTH; i++) {
				s->pc[i] = 0;
			}
			return;
		}
		fp       = (uintptr_t *) next;
		s->pc[i] = fp[1];
	}
}

/* In the wrapper itself (a macro, not a function): its return address is
 * the call site, its frame the start of the walk. */
#define CAPTURE(s)                                                        \
	mqtls_stack s;                                                    \
	s.pc[0] = (uintptr_t) __builtin_return_address(0);                \
	walk((uintptr_t *) __builtin_frame_address(0), &s)

/* The packet type of a live message: the encoded fixed header when there is
 * one, else the MQTT client's decoded form, else 0 (unknown). */
static uint8_t
msg_kind(nni_msg *m)
{
	if (nni_msg_header_len(m) > 0) {
		return (*(uint8_t *) nni_msg_header(m)) >> 4;
	}
	if (nni_msg_get_proto_data(m) != NULL) {
		return (uint8_t) nni_mqtt_msg_get_packet_type(m);
	}
	return 0;
}

/* ---- messages ----------------------------------------------------------- */

int
__wrap_nni_msg_alloc(nni_msg **mp, size_t sz)
{
	CAPTURE(s);
	int rv = __real_nni_msg_alloc(mp, sz);
	if (rv == 0) {
		mqtls_shim_msg_alloc(*mp, &s);
	}
	return rv;
}

void
__wrap_nni_msg_free(nni_msg *m)
{
	if (m == NULL) {
		__real_nni_msg_free(m);
		return;
	}
	CAPTURE(s);
	mqtls_shim_msg_free(m, &s);
	__real_nni_msg_free(m);
	mqtls_shim_msg_free_done();
}

void
__wrap_nni_msg_clone(nni_msg *m)
{
	CAPTURE(s);
	mqtls_shim_msg_clone(m, &s);
	__real_nni_msg_clone(m);
}

int
__wrap_nni_msg_dup(nni_msg **dup, const nni_msg *src)
{
	CAPTURE(s);
	int rv = __real_nni_msg_dup(dup, src);
	mqtls_shim_msg_dup(rv == 0 ? *dup : NULL, src, &s);
	return rv;
}

/* unique and pull_up may free their argument inside message.c (where the
 * free is not wrapped) and return a copy. unique frees exactly when the
 * message is shared, which is known before the call, so the free is
 * recorded before it happens; pull_up's decision is only seen afterwards. */
nni_msg *
__wrap_nni_msg_unique(nni_msg *m)
{
	CAPTURE(s);
	int      shared = mqtls_shim_enabled() && nni_msg_shared(m);
	uint64_t token  = mqtls_shim_msg_replace_begin(m, shared, &s);
	nni_msg *out    = __real_nni_msg_unique(m);
	mqtls_shim_msg_replace_end(m, token, out, &s);
	return out;
}

nni_msg *
__wrap_nni_msg_pull_up(nni_msg *m)
{
	CAPTURE(s);
	uint64_t token = mqtls_shim_msg_replace_begin(m, 0, &s);
	nni_msg *out   = __real_nni_msg_pull_up(m);
	mqtls_shim_msg_replace_end(m, token, out, &s);
	return out;
}

/* ---- aios ---------------------------------------------------------------- */

void
__wrap_nni_aio_init(nni_aio *aio, nni_cb cb, void *arg)
{
	CAPTURE(s);
	__real_nni_aio_init(aio, cb, arg);
	mqtls_shim_aio_init(aio, &s);
}

int
__wrap_nni_aio_alloc(nni_aio **aio_p, nni_cb cb, void *arg)
{
	CAPTURE(s);
	int rv = __real_nni_aio_alloc(aio_p, cb, arg);
	if (rv == 0) {
		mqtls_shim_aio_init(*aio_p, &s);
	}
	return rv;
}

/* fini cancels: the provider's cancel function finishes the operation
 * through the wrapped finish, during the real call. */
void
__wrap_nni_aio_fini(nni_aio *aio)
{
	CAPTURE(s);
	uint64_t token = mqtls_shim_aio_free_begin(aio, &s);
	__real_nni_aio_fini(aio);
	mqtls_shim_aio_free_end(aio, token);
}

void
__wrap_nni_aio_free(nni_aio *aio)
{
	if (aio == NULL) {
		__real_nni_aio_free(aio);
		return;
	}
	CAPTURE(s);
	uint64_t token = mqtls_shim_aio_free_begin(aio, &s);
	__real_nni_aio_free(aio);
	mqtls_shim_aio_free_end(aio, token);
}

void
__wrap_nni_aio_reap(nni_aio *aio)
{
	if (aio != NULL) {
		CAPTURE(s);
		mqtls_shim_aio_reap(aio, &s);
	}
	__real_nni_aio_reap(aio);
}

void
__wrap_nni_aio_set_msg(nni_aio *aio, nni_msg *msg)
{
	CAPTURE(s);
	mqtls_shim_aio_set_msg(aio, msg, &s);
	__real_nni_aio_set_msg(aio, msg);
}

nni_msg *
__wrap_nni_aio_get_msg(nni_aio *aio)
{
	CAPTURE(s);
	nni_msg *msg = __real_nni_aio_get_msg(aio);
	mqtls_shim_aio_get_msg(aio, msg, &s);
	return msg;
}

int
__wrap_nni_aio_begin(nni_aio *aio)
{
	CAPTURE(s);
	int rv = __real_nni_aio_begin(aio);
	mqtls_shim_aio_begin(aio, rv, &s);
	return rv;
}

int
__wrap_nni_aio_schedule(nni_aio *aio, nni_aio_cancel_fn cancel, void *data)
{
	CAPTURE(s);
	mqtls_shim_aio_schedule(aio, &s);
	int rv = __real_nni_aio_schedule(aio, cancel, data);
	mqtls_shim_aio_scheduled(aio, rv, cancel != NULL);
	return rv;
}

void
__wrap_nni_aio_finish(nni_aio *aio, int rv, size_t count)
{
	CAPTURE(s);
	mqtls_shim_aio_finish(aio, rv, NULL, &s);
	__real_nni_aio_finish(aio, rv, count);
}

void
__wrap_nni_aio_finish_sync(nni_aio *aio, int rv, size_t count)
{
	CAPTURE(s);
	mqtls_shim_aio_finish(aio, rv, NULL, &s);
	__real_nni_aio_finish_sync(aio, rv, count);
}

void
__wrap_nni_aio_finish_error(nni_aio *aio, int rv)
{
	CAPTURE(s);
	mqtls_shim_aio_finish(aio, rv, NULL, &s);
	__real_nni_aio_finish_error(aio, rv);
}

/* Puts msg in the slot (inside aio.c, unwrapped) and finishes. */
void
__wrap_nni_aio_finish_msg(nni_aio *aio, nni_msg *msg)
{
	CAPTURE(s);
	mqtls_shim_aio_finish(aio, 0, msg, &s);
	__real_nni_aio_finish_msg(aio, msg);
}

/* A deferred finish: nni_aio_completions_run later calls finish_sync inside
 * aio.c, unwrapped; the decision is taken here. */
void
__wrap_nni_aio_completions_add(
    nni_aio_completions *clp, nni_aio *aio, int rv, size_t count)
{
	CAPTURE(s);
	mqtls_shim_aio_finish(aio, rv, NULL, &s);
	__real_nni_aio_completions_add(clp, aio, rv, count);
}

void
__wrap_nni_aio_wait(nni_aio *aio)
{
	CAPTURE(s);
	mqtls_shim_aio_wait(aio, &s);
	__real_nni_aio_wait(aio);
	mqtls_shim_aio_waited(aio);
}

void
__wrap_nni_aio_abort(nni_aio *aio, int rv)
{
	CAPTURE(s);
	mqtls_shim_aio_cancel(aio, &s);
	__real_nni_aio_abort(aio, rv);
}

void
__wrap_nni_aio_close(nni_aio *aio)
{
	if (aio != NULL) {
		CAPTURE(s);
		mqtls_shim_aio_cancel(aio, &s);
	}
	__real_nni_aio_close(aio);
}

/* stop also waits for the callback, inside aio.c (unwrapped). */
void
__wrap_nni_aio_stop(nni_aio *aio)
{
	if (aio != NULL) {
		CAPTURE(s);
		mqtls_shim_aio_cancel(aio, &s);
	}
	__real_nni_aio_stop(aio);
}

void
__wrap_nni_aio_set_timeout(nni_aio *aio, nng_duration when)
{
	__real_nni_aio_set_timeout(aio, when);
	mqtls_shim_aio_timeout(aio, (int64_t) when, -1);
}

void
__wrap_nni_aio_set_expire(nni_aio *aio, nni_time expire)
{
	__real_nni_aio_set_expire(aio, expire);
	mqtls_shim_aio_timeout(aio, -1, (int64_t) expire);
}

/* ---- when the report is written ----------------------------------------- */

#define MAX_STOP_SIGNALS 8
static int              stop_signals[MAX_STOP_SIGNALS];
static int              n_stop_signals;
static struct sigaction previous[MAX_STOP_SIGNALS];
/* To the reporter: a signal number, or 0 for "the process exits". */
static int       wake[2] = { -1, -1 };
/* From the reporter: the exit's report is written. */
static int       done[2] = { -1, -1 };
static pthread_t reporter_thread;
static bool      reporter_running;

/* Async-signal-safe: one byte to the reporter thread. */
static void
on_stop_signal(int sig)
{
	unsigned char b = (unsigned char) sig;
	if (write(wake[1], &b, 1) != 1) {
		/* No reporter: die as the signal asks. */
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

/* Writes the report when asked. After a stop signal's report the signal
 * goes to whoever had it before (a program's own handler, a leak checker
 * such as mqtls' lsan_on_signal) or, if nobody, kills the process: the exit
 * status still says "stopped". The exit's report is written here too,
 * because by the time atexit handlers run, the exiting thread's
 * thread-locals are gone. Its name ends in `_thread` so that the hostile
 * peers' stuck analysis (src/hostile/stuck.rs) takes it for the idle
 * worker it is, not for the place a stuck target waits. */
static void *
mqtls_shim_reporter_thread(void *arg)
{
	unsigned char b;
	(void) arg;
	prctl(PR_SET_NAME, "mqtls-shim", 0, 0, 0);
	for (;;) {
		ssize_t n = read(wake[0], &b, 1);
		if (n == 0) {
			return NULL;
		}
		if (n != 1) {
			continue;
		}
		if (b == 0) {
			mqtls_shim_report("exit");
			if (write(done[1], &b, 1) != 1) {
				return NULL;
			}
			continue;
		}
		int  sig = b;
		char trigger[32];
		snprintf(trigger, sizeof trigger, "signal %d", sig);
		mqtls_shim_report(trigger);
		for (int i = 0; i < n_stop_signals; i++) {
			if (stop_signals[i] == sig) {
				sigaction(sig, &previous[i], NULL);
			}
		}
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		kill(getpid(), sig);
	}
}

static void
at_exit(void)
{
	unsigned char b = 0;
	if (reporter_running && !pthread_equal(pthread_self(), reporter_thread) &&
	    write(wake[1], &b, 1) == 1) {
		while (read(done[0], &b, 1) < 0) {
		}
		return;
	}
	mqtls_shim_report("exit");
}

static void
at_sanitizer_death(void)
{
	mqtls_shim_report("sanitizer report");
}

__attribute__((constructor)) static void
mqtls_shim_install(void)
{
	mqtls_shim_init(msg_kind);
	if (!mqtls_shim_enabled()) {
		return;
	}
	if (__sanitizer_set_death_callback != NULL) {
		__sanitizer_set_death_callback(at_sanitizer_death);
	}
	n_stop_signals = mqtls_shim_stop_signals(stop_signals, MAX_STOP_SIGNALS);
	if (pipe(wake) == 0 && pipe(done) == 0) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		reporter_running =
		    pthread_create(&reporter_thread, &attr, mqtls_shim_reporter_thread, NULL) == 0;
		pthread_attr_destroy(&attr);
	}
	atexit(at_exit);
	if (!reporter_running) {
		return;
	}
	for (int i = 0; i < n_stop_signals; i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_stop_signal;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		sigaction(stop_signals[i], &sa, &previous[i]);
	}
}
