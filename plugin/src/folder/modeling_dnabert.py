"""dnabert's centre-token classification head, for `transformers`.

Written by `dnabert finetune` (head: centre) beside the weights, so that

    AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)

gives the same logits as `dnabert predict`: BioNeMo's splice-site head reads the hidden state
of the centre token of each sequence's real tokens, index (length - 1) // 2 counting [CLS] and
[SEP], through dense (config.dnabert_head["hidden"] units) + ReLU, dropout, and out_proj.
"""
import torch
from torch import nn
from transformers import BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class DnabertCentreHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        hidden = config.dnabert_head["hidden"]
        self.dense = nn.Linear(config.hidden_size, hidden)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.out_proj = nn.Linear(hidden, config.num_labels)

    def forward(self, x):
        return self.out_proj(self.dropout(torch.relu(self.dense(x))))


class DnabertForCentreTokenClassification(BertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = DnabertCentreHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        centre = (attention_mask.sum(dim=1) - 1).clamp(min=0) // 2
        picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), centre]
        logits = self.classifier(picked)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
