"""Hints in stages: ``hint("01.rnn_step")`` gives a first nudge, ``hint("01.rnn_step", 2)`` more, and so on.

The exercise stubs carry only the first stage (the nudge); each later stage says more, and the last one is
close to the answer. Nothing here is needed to pass a check. ``hint`` prints them in the learner's language
(``_messages``: the English stage is the key of its translation).
"""

from __future__ import annotations

from ._messages import tr, translate

HINTS: dict[str, tuple[str, ...]] = {
    # ---------------------------------------------------------------- 01
    "01.rnn_step": (
        "Write the formula above as PyTorch: two matrix products, a bias, a nonlinearity.",
        "`@` multiplies matrices: x_t @ w_xh has shape (B, d_h), and so has h_prev @ w_hh. Add them and b_h.",
        "Apply torch.tanh to the sum (not to each term).",
    ),
    "01.run_rnn": (
        "Keep a running state, starting at h0, and update it once per time step with your rnn_step.",
        "xs[:, t] is the input at time t, shape (B, d_in). Collect every new state in a list.",
        "torch.stack(states, dim=1) turns a list of T tensors (B, d_h) into (B, T, d_h).",
    ),
    "01.path_length": (
        "Count layer applications, not positions: how many times must the information be transformed to get from i to j?",
        "A recurrent layer moves information one position per application: from i to i + 1 is one update.",
        "So from i to j it takes j - i updates (0 when i == j). One attention layer connects any two different "
        "positions in a single application; a position reaches itself in 0.",
    ),
    "01.accuracy": (
        "The predicted class of a row is the one with the highest logit.",
        "logits.argmax(dim=-1) gives the predicted class per row; compare it with labels.",
        "The mean of the (float) comparison is the accuracy; .item() makes it a Python float.",
    ),
    # ---------------------------------------------------------------- 02
    "02.attention_scores": (
        "Every query against every key: one matrix product, then the scaling from the lesson.",
        "k.transpose(-2, -1) turns (..., Tk, d) into (..., d, Tk), so q @ it is (..., Tq, Tk).",
        "Divide by math.sqrt(d), with d = q.shape[-1] (the key/query width, not the sequence length).",
    ),
    "02.softmax": (
        "exp, then normalise along the right axis; and make it safe for large scores.",
        "Subtracting the row's maximum changes nothing mathematically but keeps exp from overflowing.",
        "Use amax/sum over dim=-1 with keepdim=True so the shapes broadcast back.",
    ),
    "02.causal_mask": (
        "Position t may look at positions 0..t: which entries of a (size, size) matrix is that?",
        "Row = query, column = key: True where column <= row, the lower triangle with its diagonal.",
        "torch.tril of a matrix of ones (as bool) builds it.",
    ),
    "02.padding_mask": (
        "Position p of sequence b is real when p < lengths[b].",
        "Compare a row of positions with a column of lengths and let broadcasting build the (B, max_len) table.",
        "torch.arange(max_len)[None, :] < lengths[:, None]",
    ),
    "02.scaled_dot_product_attention": (
        "Put together what you wrote: scores, mask, softmax over the keys, weighted sum of the values.",
        "Masked positions must get zero weight: give their scores -inf before the softmax (masked_fill(~mask, ...)).",
        "Return both the output weights @ v and the weights themselves.",
    ),
    # ---------------------------------------------------------------- 03
    "03.split_heads": (
        "Reshape the last axis into (heads, head width), then bring the head axis next to the batch.",
        "A plain reshape to (B, n_heads, T, d_head) mixes time steps: view as (B, T, n_heads, d_head) first.",
        "Then .transpose(1, 2) gives (B, n_heads, T, d_head).",
    ),
    "03.multi_head_attention": (
        "Project, split into heads, attend per head, merge the heads, project the output.",
        "For each of w_q, w_k, w_v: split_heads(x @ w, n_heads). The attention function works on any leading axes.",
        "Merging is the inverse of splitting: transpose(1, 2), then reshape to (B, T, d_model); finish with @ w_o.",
    ),
    "03.sinusoidal_positional_encoding": (
        "Each pair of columns is a sine and a cosine of the position at one frequency.",
        "The angle is position / 10000 ** (2i / d_model) for pair i; build positions as a column and the frequencies as a row.",
        "Sine goes into the even columns (0::2), cosine into the odd ones (1::2).",
    ),
    "03.layer_norm": (
        "Normalise each position's feature vector on its own, then scale and shift.",
        "Mean and variance over the last axis (keepdim=True); the variance is the biased one (unbiased=False).",
        "(x - mean) / sqrt(var + eps) * gamma + beta",
    ),
    # ---------------------------------------------------------------- 04
    "04.block_flops": (
        "Count the matrix products of one block; a product of (m x k) by (k x n) costs 2 m k n FLOPs.",
        "Four d x d projections over T tokens, an MLP of two products with width 4d, and two T x T attention products.",
        "4 * (2 T d^2) + 2 * (2 T d 4d) + 2 * (2 T^2 d)",
    ),
    "04.time_fn": (
        "Follow lesson 00's rules: warm-up, synchronise, repeat, and report the median.",
        "Run the work `warmup` times untimed and sync() once; then time each repeat on its own.",
        "Per repeat: start = clock(); work(); sync(); keep clock() - start. Return statistics.median of them, as a float.",
    ),
    "04.causal_sdpa": (
        "PyTorch's fused attention can apply the causal mask itself.",
        "torch.nn.functional.scaled_dot_product_attention has an is_causal argument.",
        "One call: F.scaled_dot_product_attention(q, k, v, is_causal=True)",
    ),
    "04.ddp_average": (
        "DDP's all-reduce combines the replicas' gradients; what does each replica end up with?",
        "The all-reduce sums; DDP then divides by the number of replicas.",
        "torch.stack(shard_grads).sum(dim=0) / len(shard_grads)",
    ),
    # ---------------------------------------------------------------- 05
    "05.shift_targets": (
        "At position t the model predicts token t + 1: the targets are the inputs moved by one.",
        "Both come from the same window; one loses its last token, the other its first.",
        "inputs = window[..., :-1], targets = window[..., 1:]",
    ),
    "05.lm_loss": (
        "The loss is the mean cross-entropy over every position of every sequence.",
        "F.cross_entropy wants (N, classes) logits and (N,) targets: flatten batch and time together.",
        "logits.reshape(-1, logits.shape[-1]) and targets.reshape(-1).",
    ),
    "05.warmup_cosine_lr": (
        "Three phases: a linear ramp, a cosine decay, and a floor after the end.",
        "Warm-up: max_lr * (step + 1) / warmup, as the lesson's plot shows; after total: min_lr.",
        "In between, progress = (step - warmup) / (total - warmup), lr = min_lr + 0.5 (1 + cos(pi progress)) (max_lr - min_lr).",
    ),
    "05.sample_next": (
        "Temperature rescales the logits; top-k keeps only the k most likely tokens; then draw one.",
        "Divide by the temperature, set every logit below the k-th largest to -inf, softmax.",
        "torch.multinomial(probs, 1, generator=generator) draws the next token.",
    ),
    "05.pre_ln_block": (
        "Pre-LN: each sublayer reads a normalised copy of the residual stream and adds to the stream.",
        "The first residual step uses attention and norm1; the second uses feed_forward and norm2, on the updated stream.",
        "h = x + attention(norm1(x)); return h + feed_forward(norm2(h))",
    ),
    # ---------------------------------------------------------------- 06
    "06.attention_rollout": (
        "Follow attention through the layers, counting the residual connection as attention to oneself.",
        "Per layer: average the heads, mix half-and-half with the identity, renormalise the rows.",
        "Multiply the layers' matrices in order: rollout = mixed @ rollout, starting from the identity.",
    ),
    "06.mean_attention_distance": (
        "Weight each query-key distance |i - j| by its attention weight.",
        "Build the |i - j| table from torch.arange; multiply by the weights and sum over the keys.",
        "Then average over the queries.",
    ),
    "06.previous_token_head": (
        "A previous-token head puts its weight on w[i, i - 1]: one diagonal of each map.",
        "torch.diagonal(attentions, offset=-1, dim1=-2, dim2=-1) holds those weights for every layer and head.",
        "Average them per (layer, head) and return the position of the largest.",
    ),
    "06.special_token_share": (
        "How much of each query's weight lands on the special tokens?",
        "Select the special tokens among the KEYS (the last axis) and sum their weights per query.",
        "Then average over the queries.",
    ),
    # ---------------------------------------------------------------- 07
    "07.mean_pool": (
        "Average the vectors of the real tokens only, not the padding.",
        "Multiply by the mask (as float, with a trailing axis) before summing over time.",
        "Divide by the number of real tokens per sequence (the mask's sum), not by the length.",
    ),
    "07.freeze_encoder": (
        "A frozen weight gets no gradient.",
        "Every parameter of model.encoder should stop requiring gradients; the head keeps training.",
        "p.requires_grad_(False) for p in model.encoder.parameters(); return the model.",
    ),
    "07.warmup_linear": (
        "Two phases: a ramp up over the warm-up steps, then a straight line down to zero at the end.",
        "During warm-up: (step + 1) / warmup, so step 0 is not 0. After it: (total - step) / (total - warmup).",
        "Never below 0: max(0.0, ...).",
    ),
    "07.select_by_validation": (
        "Choose with the validation split only; report the chosen run's test accuracy.",
        "Find the run with the highest val_accuracy.",
        "Return that run's test_accuracy (not the highest test accuracy).",
    ),
    # ---------------------------------------------------------------- build it and hit a target
    "03.build_classifier": (
        "Wrap your lesson-03 functions in nn.Modules: a block (LayerNorm, attention, feed-forward, residuals), then "
        "a classifier (embedding + positions, blocks, a readout, a linear head).",
        "Keep the weights as nn.Parameter (w_q, w_k, w_v, w_o, gamma, beta) so the optimizer trains them; add the "
        "sinusoidal positions to the token embeddings, or the model cannot tell the first token from the others.",
        "Pre-LN block: x = x + multi_head_attention(layer_norm(x, ...), ...); x = x + ff(layer_norm(x, ...)). "
        "Readout: the mean over positions, then nn.Linear(d_model, n_classes).",
    ),
    "05.build_gpt": (
        "A GPT is token + position embeddings, a stack of causal Pre-LN blocks (use your pre_ln_block), a final "
        "LayerNorm and a linear head to vocab_size logits at every position.",
        "The attention must be causal: F.scaled_dot_product_attention(q, k, v, is_causal=True) with q, k, v split "
        "into heads (B, heads, T, d_head); the check changes later tokens and expects earlier logits to stay put.",
        "Position embeddings: nn.Embedding(block_size, d_model) looked up with torch.arange(T). The check trains "
        "with AdamW, warm-up and clipping; a correct model of the given size reaches the target.",
    ),
    "07.build_200_labels": (
        "200 labels are few: start from what a pretrained encoder already knows (lesson 07).",
        "attention_course.inside.pretrained.load_minilm() and embed(encoder, tokenizer, texts, device) give one vector per "
        "sentence; fit a classifier on the 200 training vectors.",
        "sklearn's LogisticRegression on the embeddings (a linear probe) is enough: fit on the training texts' "
        "vectors and labels, then predict the other texts' labels.",
    ),
    # ---------------------------------------------------------------- 08
    "08.kv_cache_step": (
        "Two jobs: grow the cache with the new keys and values, then attend from the new queries over all of it.",
        "torch.cat([cache_k, k], dim=-2) appends along time; scores are q @ keys.transpose(-2, -1) / sqrt(d).",
        "New query i sits at position past + i: mask with torch.ones(T_new, T_all, dtype=torch.bool).tril(T_all - T_new) "
        "(masked_fill(~mask, -inf)), softmax over the last axis, times the values.",
    ),
    "08.distillation_loss": (
        "Two terms: a KL divergence between softened distributions, and the usual cross-entropy with the labels.",
        "Soften both: F.log_softmax(student_logits / T, -1) and F.softmax(teacher_logits / T, -1); "
        "F.kl_div(student_log_probs, teacher_probs, reduction='batchmean') is KL(teacher || student).",
        "alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(student_logits, labels) (raw logits in the cross-entropy).",
    ),
    "08.latency_percentile": (
        "A percentile is read off the SORTED timings, between two neighbours when the rank falls between them.",
        "With n timings the rank is r = q / 100 * (n - 1), counted from 0: r = 0 is the fastest, r = n - 1 the slowest.",
        "low, high = math.floor(r), math.ceil(r); return s[low] + (r - low) * (s[high] - s[low]) with s = sorted(timings).",
    ),
    "08.cost_per_million": (
        "How many predictions does the machine make in the hour you pay for?",
        "predictions_per_s * 3600 an hour, so one prediction costs hourly_price / (3600 * predictions_per_s).",
        "Multiply the cost of one prediction by 1_000_000.",
    ),
    "08.cheapest_variant": (
        "Two steps: keep the rows that meet both targets, then pick the cheapest of them.",
        "A row meets the targets when row['accuracy'] >= min_accuracy and row['p95_ms'] <= max_p95_ms.",
        "min(meeting, key=lambda row: row['cost_per_million'])['variant'], or None when meeting is empty.",
    ),
    "08.static_cache_update": (
        "Nothing grows in a static cache: the buffers keep their shape, and the new keys land at their positions.",
        "cache.keys[:B, :, start:start + T_new] = k (the same for values) writes in place; return cache.keys[:B] and "
        "cache.values[:B].",
        "visible = torch.arange(max_len)[None, :] <= (start + torch.arange(T_new))[:, None]: query i (at position "
        "start + i) sees keys 0 .. start + i.",
    ),
    # ---------------------------------------------------------------- 09
    "09.patchify": (
        "A plain reshape cuts the image into strips: split each image axis into (grid, patch) first, and bring the "
        "two grid axes together before flattening.",
        "Give grey images a channel axis (images[:, None]); reshape (B, C, H, W) to (B, C, H/p, p, W/p, p).",
        "permute(0, 2, 4, 1, 3, 5) gives (B, H/p, W/p, C, p, p); reshape that to (B, (H/p) * (W/p), C * p * p).",
    ),
    "09.info_nce": (
        "Compare every image with every caption by cosine similarity, sharpened by the temperature; the matching pairs "
        "sit on the diagonal.",
        "F.normalize(x, dim=-1) makes rows unit length; logits = image @ text.T / temperature is (B, B), and the right "
        "'class' of row i is i.",
        "targets = torch.arange(B); return the mean of F.cross_entropy(logits, targets) and "
        "F.cross_entropy(logits.T, targets).",
    ),
    "09.decoder_masks": (
        "self_mask combines two rules (no looking ahead, no looking at padding); cross_mask has no rule at all.",
        "Causal: torch.ones(T, T, dtype=torch.bool).tril(). Padding is a property of the KEY s, so "
        "(tokens != pad_id) goes on the last axis.",
        "self_mask = causal[None] & (tokens != pad_id)[:, None, :]; "
        "cross_mask = torch.ones(B, T, n_patches, dtype=torch.bool).",
    ),
    "09.seasonal_naive": (
        "The forecast repeats the last full season of the history, over and over.",
        "last = history[-season:] holds one season; step h of the forecast takes last[h % season].",
        "np.asarray(history, dtype=float)[-season:][np.arange(horizon) % season]",
    ),
    "09.mase": (
        "Two mean absolute errors, divided: the forecast's on the test values, and seasonal naive's inside the "
        "training series.",
        "Seasonal naive inside the training series compares each value with the one a season earlier: "
        "y_train[season:] against y_train[:-season].",
        "float(np.mean(np.abs(y_true - y_pred)) / np.mean(np.abs(y_train[season:] - y_train[:-season])))",
    ),
    # ---------------------------------------------------------------- 10
    "10.cost_per_million": (
        "How many hours does the machine need for one million predictions?",
        "It does predictions_per_s * 3600 predictions an hour, so a million take 1e6 / (3600 * predictions_per_s) hours.",
        "Multiply those hours by hourly_price.",
    ),
    "10.monthly_cost": (
        "First count the machines, then price them for a month.",
        "One machine does predictions_per_s * 86400 a day; machines come whole (math.ceil) and at least one runs.",
        "max(1, math.ceil(daily_volume / (86400 * predictions_per_s))) * hourly_price * 730.",
    ),
    "10.break_even_months": (
        "What does the model save each month compared with doing the work by hand?",
        "saving = monthly_manual - monthly_model; the one-off cost is paid back at that rate.",
        "If saving <= 0 return math.inf, else one_off / saving.",
    ),
    "10.choose_candidate": (
        "Two steps: keep the rows that meet every KPI, then pick among them.",
        "A row meets the KPIs when accuracy >= min_accuracy, p95_ms <= max_p95_ms, cost_per_million <= "
        "max_cost_per_million and labels <= max_labels.",
        "min(meeting, key=lambda r: (r['cost_per_million'], -r['accuracy']))['candidate'], or None if none meets them.",
    ),
    "10.slice_accuracy": (
        "Only the sentences for which predicate(text) is True count.",
        "Collect the indices i with predicate(texts[i]); compare labels[i] with predictions[i] there.",
        "Correct predictions in the slice divided by the number of sentences in the slice.",
    ),
    "10.invalid_comparison": (
        "Look at each field: where were the settings chosen, on which test set was it scored, what went into training?",
        "selected_on == 'test' means tuned on test; test_sha != reference means a different test set.",
        "If test_sha appears in train_includes, the test data leaked into training. Return the set of problem names.",
    ),
    # ---------------------------------------------------------------- 11
    "11.recall_at_false_alarm": (
        "The false-alarm budget fixes the threshold, and only the GOOD parts' scores decide it.",
        "Sort the good scores from highest down; with k = floor(budget * number of good parts), the k-th of them "
        "(counting from 0) is the threshold: at most k good parts score above it.",
        "recall = np.mean(scores[defective] > threshold): the share of defective parts strictly above it.",
    ),
    "11.pointing_game": (
        "Per image: where is the map's brightest pixel, and is it on the (slightly grown) defect?",
        "Grow each mask by `tolerance` pixels with F.max_pool2d(masks[:, None].float(), 2 * tolerance + 1, stride=1, "
        "padding=tolerance); the peak is maps.flatten(1).argmax(-1).",
        "grown.flatten(1)[torch.arange(len(maps)), peak].float(): 1.0 for a hit, 0.0 for a miss.",
    ),
    "11.masked_patch_loss": (
        "The model is scored only on what it could not see.",
        "mask is True where a patch was hidden; rebuilt[mask] and target[mask] keep those patches, (N, pixels).",
        "F.mse_loss(rebuilt[mask], target[mask]): the mean over every pixel of every masked patch.",
    ),
    "11.error_cost": (
        "Two kinds of error, each counted on its own kind of part, each with its own price.",
        "defects = parts * defect_rate; missed defects = defects * (1 - recall); false alarms happen on the "
        "parts - defects good parts, at the false-alarm rate.",
        "defects * (1 - recall) * miss_price + (parts - defects) * false_alarm * alarm_price.",
    ),
    "11.build_inspector": (
        "Defects are small: a CNN that standardises each image and keeps the STRONGEST response anywhere "
        "(global max pooling) learns them quickly.",
        "Conv(3x3) + BatchNorm + ReLU blocks, a stride or max-pool to shrink 64 -> 8, AdaptiveMaxPool2d(1), a linear "
        "layer to 5 classes; train with AdamW, random flips, a few hundred steps of 64.",
        "Return 1 - softmax(logits)[:, 0] for the held-out images (the model in eval mode, under torch.no_grad()).",
    ),
}


def hint(task_id: str, stage: int = 1) -> None:
    """Print stage ``stage`` of the hints for ``task_id`` (1 is a nudge, the last is nearly the answer).

    It prints once and returns nothing, so a notebook cell that ends with ``hint(...)`` does not show the text
    a second time as the cell's value.
    """
    from ._core import TASKS  # every registered task, for a helpful message

    stages = HINTS.get(task_id)
    if not stages:
        known = sorted(HINTS) if task_id not in TASKS else []
        print(tr("no hints for {quoted}", quoted=repr(task_id))
              + (tr("; tasks with hints: {known}", known=", ".join(known)) if known else ""))
        return
    stage = max(1, min(int(stage), len(stages)))
    more = (tr("  (more: hint({quoted}, {next}))", quoted=repr(task_id), next=stage + 1) if stage < len(stages)
            else tr("  (that was the last hint)"))
    # a stage is its own template (no fields): translate() looks it up without formatting it
    print(tr("Hint {stage}/{stages} for {task_id}: {text}{more}", stage=stage, stages=len(stages), task_id=task_id,
             text=translate(stages[stage - 1]), more=more))
