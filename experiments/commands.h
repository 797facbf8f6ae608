/* The polyrope subcommands: each takes (argc, argv) with argv[0] the command name and
 * returns the process exit status (0 success, 1 a check failed, 2 bad usage or input). */
#ifndef PR_COMMANDS_H
#define PR_COMMANDS_H

int pr_cmd_attn(int argc, char **argv);
int pr_cmd_degree(int argc, char **argv);
int pr_cmd_check(int argc, char **argv);
int pr_cmd_sweep(int argc, char **argv);
int pr_cmd_plot(int argc, char **argv);
int pr_cmd_bench(int argc, char **argv);
int pr_cmd_reproduce(int argc, char **argv);
int pr_cmd_certify(int argc, char **argv);

/* polyrope bench NAME: one function per benchmark, argv[0] = NAME */
int pr_bench_dense(int argc, char **argv);
int pr_bench_toeplitz(int argc, char **argv);
int pr_bench_fast(int argc, char **argv);
int pr_bench_backward(int argc, char **argv);
int pr_bench_certify(int argc, char **argv);

#endif
