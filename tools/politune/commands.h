/* The subcommands of the politune CLI: each lives in its own cmd_<name>.c with its own usage
 * text, and returns the process exit status. */
#ifndef PT_CLI_COMMANDS_H
#define PT_CLI_COMMANDS_H

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *summary;
} pt_cli_command;

int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_train(int argc, char **argv);         /* cmd_train.c */
int cmd_merge(int argc, char **argv);         /* cmd_merge.c */
int cmd_export_lora(int argc, char **argv);   /* cmd_export_lora.c */
int cmd_compass(int argc, char **argv);       /* cmd_compass.c */
int cmd_compass_score(int argc, char **argv); /* cmd_compass_score.c */
int cmd_dial(int argc, char **argv);          /* cmd_dial.c */
int cmd_steer(int argc, char **argv);         /* cmd_steer.c */
int cmd_report(int argc, char **argv);        /* cmd_report.c */
int cmd_compare(int argc, char **argv);       /* cmd_compare.c */
int cmd_serve(int argc, char **argv);         /* cmd_serve.c */
int cmd_select(int argc, char **argv);        /* cmd_select.c */
int cmd_synth(int argc, char **argv);         /* cmd_synth.c */
int cmd_judge_answers(int argc, char **argv); /* cmd_judge_answers.c */
int cmd_annotate_eval(int argc, char **argv); /* cmd_annotate_eval.c */
int cmd_run(int argc, char **argv);           /* cmd_run.c */
int cmd_demo(int argc, char **argv);          /* cmd_demo.c */
int cmd_pull(int argc, char **argv);          /* cmd_pull.c */

#endif
