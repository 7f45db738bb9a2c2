/*
 * bench/atomics.c -- what this machine allows two sessions on one counter
 * (issue 8, item 7): the aggregate rate of two threads doing fetch_add on
 * one shared cache line, and of two threads each on a line of its own,
 * against one thread alone.
 *
 *   cc -O2 -pthread -o atomics bench/atomics.c && ./atomics [seconds]
 *
 * Prints one line per case: operations per second, and the ratio to one
 * thread.  Each thread also does `work` iterations of private arithmetic
 * between atomics, so that the shared line is contended as a SQL caller
 * contends it (a call of idalloc_one costs far more than its atomic).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LINE 64

struct padded
{
	_Alignas(LINE) _Atomic uint64_t v;
	char		pad[LINE - sizeof(uint64_t)];
};

static struct padded lines[2];
static volatile int stop;
static int	work;

struct arg
{
	_Atomic uint64_t *counter;
	uint64_t	ops;
};

static void *
run(void *p)
{
	struct arg *a = p;
	uint64_t	n = 0;
	uint64_t	x = 1;

	while (!stop)
	{
		for (int i = 0; i < 1000; i++)
		{
			atomic_fetch_add_explicit(a->counter, 1, memory_order_seq_cst);
			for (int w = 0; w < work; w++)
				x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		}
		n += 1000;
	}
	a->ops = n + (x == 42);		/* keep x alive */
	return NULL;
}

static double
measure(int nthreads, int shared, double seconds)
{
	pthread_t	t[2];
	struct arg	a[2];
	struct timespec ts = {(time_t) seconds, (long) ((seconds - (time_t) seconds) * 1e9)};
	uint64_t	total = 0;

	stop = 0;
	for (int i = 0; i < nthreads; i++)
	{
		a[i].counter = &lines[shared ? 0 : i].v;
		a[i].ops = 0;
		pthread_create(&t[i], NULL, run, &a[i]);
	}
	nanosleep(&ts, NULL);
	stop = 1;
	for (int i = 0; i < nthreads; i++)
	{
		pthread_join(t[i], NULL);
		total += a[i].ops;
	}
	return total / seconds;
}

int
main(int argc, char **argv)
{
	double		seconds = argc > 1 ? atof(argv[1]) : 2.0;
	int			works[] = {0, 50};

	for (int k = 0; k < 2; k++)
	{
		double		one,
					two_shared,
					two_private;

		work = works[k];
		one = measure(1, 1, seconds);
		two_shared = measure(2, 1, seconds);
		two_private = measure(2, 0, seconds);
		printf("work=%d\tone thread %.3g/s\ttwo threads, one line %.3g/s (%.2fx)\ttwo threads, own lines %.3g/s (%.2fx)\n",
			   work, one, two_shared, two_shared / one, two_private,
			   two_private / one);
	}
	return 0;
}
