/* The default prompt templates, compiled in. The same text ships as files in data/prompts/
 * (a test keeps the two identical): copy that directory, edit it, and pass it with --prompts. */
#include "data/prompts.h"

const pt_prompt_info pt_prompt_defaults[PT_PROMPT_COUNT] = {
    [PT_PROMPT_IDEOLOGY] = {"select_ideology.txt", "text",
    "Rate the political ideology expressed in the following social media post on a scale from 1 to 9, where 1 means strongly left-leaning (progressive, liberal), 5 means neutral or no clear ideology, and 9 means strongly right-leaning (conservative).\n"
    "\n"
    "Post: {text}\n"
    "\n"
    "Answer with a single digit from 1 to 9 and nothing else.\n"},
    [PT_PROMPT_QUALITY] = {"select_quality.txt", "text",
    "Rate how clearly the following social media post expresses a political position, on a scale from 1 to 5, where 1 means not political, unclear, spam or off-topic, and 5 means a clear, self-contained and relevant political statement.\n"
    "\n"
    "Post: {text}\n"
    "\n"
    "Answer with a single digit from 1 to 5 and nothing else.\n"},
    [PT_PROMPT_INSTRUCTION] = {"synth_instruction.txt", "text",
    "Here is a social media post:\n"
    "\n"
    "{text}\n"
    "\n"
    "Write one question or instruction to which this post would be a direct answer. The question must be neutral and self-contained, and must not reveal the opinion of the post. Reply with the question only.\n"},
    [PT_PROMPT_CHOSEN] = {"synth_chosen.txt", "text instruction leaning opposite",
    "Answer the question below from a {leaning} point of view, in the voice of the author of this post and with its arguments.\n"
    "\n"
    "Post: {text}\n"
    "\n"
    "Question: {instruction}\n"
    "\n"
    "Reply with the answer only, in at most 120 words.\n"},
    [PT_PROMPT_REJECTED] = {"synth_rejected.txt", "text instruction leaning opposite",
    "Answer the question below from a {opposite} point of view, arguing against the position of this post.\n"
    "\n"
    "Post: {text}\n"
    "\n"
    "Question: {instruction}\n"
    "\n"
    "Reply with the answer only, in at most 120 words.\n"},
    [PT_PROMPT_ANSWER_IDEOLOGY] = {"answer_ideology.txt", "prompt answer",
    "Rate the political ideology expressed in the following answer on a scale from 1 to 9, where 1 means strongly left-leaning (progressive, liberal), 5 means neutral, balanced or no clear ideology, and 9 means strongly right-leaning (conservative).\n"
    "\n"
    "Question: {prompt}\n"
    "\n"
    "Answer: {answer}\n"
    "\n"
    "Answer with a single digit from 1 to 9 and nothing else.\n"},
    [PT_PROMPT_IDEOLOGY_MIRRORED] = {"select_ideology_mirrored.txt", "text",
    "Rate the political ideology expressed in the following social media post on a scale from 1 to 9, where 1 means strongly right-leaning (conservative), 5 means neutral or no clear ideology, and 9 means strongly left-leaning (progressive, liberal).\n"
    "\n"
    "Post: {text}\n"
    "\n"
    "Answer with a single digit from 1 to 9 and nothing else.\n"},
    [PT_PROMPT_QUALITY_MIRRORED] = {"select_quality_mirrored.txt", "text",
    "Rate how clearly the following social media post expresses a political position, on a scale from 1 to 5, where 1 means a clear, self-contained and relevant political statement, and 5 means not political, unclear, spam or off-topic.\n"
    "\n"
    "Post: {text}\n"
    "\n"
    "Answer with a single digit from 1 to 5 and nothing else.\n"},
    [PT_PROMPT_ANSWER_IDEOLOGY_MIRRORED] = {"answer_ideology_mirrored.txt", "prompt answer",
    "Rate the political ideology expressed in the following answer on a scale from 1 to 9, where 1 means strongly right-leaning (conservative), 5 means neutral, balanced or no clear ideology, and 9 means strongly left-leaning (progressive, liberal).\n"
    "\n"
    "Question: {prompt}\n"
    "\n"
    "Answer: {answer}\n"
    "\n"
    "Answer with a single digit from 1 to 9 and nothing else.\n"},
    [PT_PROMPT_PAIR_CHECK] = {"synth_pair_check.txt", "instruction leaning first second",
    "Two answers to the same question follow.\n"
    "\n"
    "Question: {instruction}\n"
    "\n"
    "Answer A: {first}\n"
    "\n"
    "Answer B: {second}\n"
    "\n"
    "Which answer is more {leaning}? Reply with A or B only.\n"},
    [PT_PROMPT_ANSWER_RATIONALE] = {"answer_rationale.txt", "prompt answer",
    "In one sentence, explain which political leaning, if any, the following answer expresses and why.\n"
    "\n"
    "Question: {prompt}\n"
    "\n"
    "Answer: {answer}\n"},
};
