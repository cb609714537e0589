/*
 * The NanoMQ 1766 ownership mistake on an ordinary subscribe, written
 * against the NanoNNG core API (fake_nng.c), for the shim's link test:
 * the protocol hands the SUBSCRIBE's only reference to the transport while
 * the user aio's slot still points at it (`buggy`), or takes a reference of
 * its own first (`fixed`). The write completes on another thread and frees
 * it; the SUBACK then overwrites the user aio's slot. Nothing reads freed
 * memory.
 *
 *   program buggy|fixed exit|term
 *   program leak
 *
 * `exit` returns from main; `term` raises SIGTERM at the end (the shim
 * writes its report, then the process dies of the signal). `leak` loses a
 * message and an aio: built with LeakSanitizer, the leak must still be
 * reported although the shim has seen both.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

typedef struct nni_msg nni_msg;
typedef struct nni_aio {
	nni_msg *msg;
	int      result;
	void (*cb)(void *);
	void *arg;
} nni_aio;

int      nni_msg_alloc(nni_msg **, size_t);
void     nni_msg_free(nni_msg *);
void     nni_msg_clone(nni_msg *);
void     nni_aio_init(nni_aio *, void (*)(void *), void *);
int      nni_aio_alloc(nni_aio **, void (*)(void *), void *);
void     nni_aio_free(nni_aio *);
void     nni_aio_set_msg(nni_aio *, nni_msg *);
nni_msg *nni_aio_get_msg(nni_aio *);
int      nni_aio_begin(nni_aio *);
void     nni_aio_finish(nni_aio *, int, size_t);
void     nni_aio_finish_sync(nni_aio *, int, size_t);
void     nni_aio_wait(nni_aio *);
void     fake_set_header(nni_msg *, uint8_t);

static nni_aio  send_aio;
static nni_aio *user_aio;
static nni_msg *suback;

/* The transport's write completion (mqtts_tcptran_pipe_send_cb). */
static void *
write_done(void *arg)
{
	(void) arg;
	pthread_setname_np(pthread_self(), "nng:task");
	nni_msg *m = nni_aio_get_msg(&send_aio);
	nni_aio_set_msg(&send_aio, NULL);
	nni_msg_free(m);
	nni_aio_finish_sync(&send_aio, 0, 0);
	return NULL;
}

/* The reader's SUBACK (mqtt_recv_cb). */
static void *
suback_arrives(void *arg)
{
	(void) arg;
	pthread_setname_np(pthread_self(), "nng:task");
	nni_msg_alloc(&suback, 4);
	fake_set_header(suback, 0x90);
	nni_msg_clone(suback);
	nni_aio_set_msg(user_aio, suback);
	nni_msg_free(suback);
	nni_aio_finish(user_aio, 0, 0);
	return NULL;
}

static void
on_thread(void *(*f)(void *))
{
	pthread_t t;
	pthread_create(&t, NULL, f, NULL);
	pthread_join(t, NULL);
}

int
main(int argc, char **argv)
{
	int      fixed = argc > 1 && strcmp(argv[1], "fixed") == 0;
	int      term  = argc > 2 && strcmp(argv[2], "term") == 0;
	nni_msg *sub;

	if (argc > 1 && strcmp(argv[1], "leak") == 0) {
		nni_aio *lost_aio;
		nni_msg *lost_msg;
		nni_aio_alloc(&lost_aio, NULL, NULL);
		nni_msg_alloc(&lost_msg, 8);
		lost_aio = NULL;
		lost_msg = NULL;
		return lost_aio == NULL && lost_msg == NULL ? 0 : 1;
	}
	nni_aio_init(&send_aio, NULL, NULL);
	nni_msg_alloc(&sub, 16);
	fake_set_header(sub, 0x82);
	nni_aio_alloc(&user_aio, NULL, NULL);
	nni_aio_set_msg(user_aio, sub);
	nni_aio_begin(user_aio);
	if (fixed) {
		nni_msg_clone(sub);
	}
	nni_aio_set_msg(&send_aio, sub);
	nni_aio_begin(&send_aio);

	on_thread(write_done);
	on_thread(suback_arrives);

	nni_aio_wait(user_aio);
	if (fixed) {
		/* The fixed protocol's reference, given back on SUBACK. */
		nni_msg_free(sub);
	}
	nni_msg_free(nni_aio_get_msg(user_aio));
	nni_aio_free(user_aio);
	if (term) {
		raise(SIGTERM);
		pause();
	}
	return 0;
}
