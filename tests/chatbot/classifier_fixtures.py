"""A tiny classifier trained in the tests: the hash embedder (no model) and a few bilingual
examples per class, through the real training code (finetune.classifier.train)."""

from __future__ import annotations

from pathlib import Path

from finetune.classifier.data import Example
from finetune.classifier.train import TrainConfig, train_classifier
from knowledge_base.embedders import HashEmbedder

INTENT_EXAMPLES = {
    "treatment": ["高血压怎么治疗", "糖尿病怎么治疗", "胃炎怎么治疗好", "湿疹怎么治疗", "感冒怎么治疗快",
                  "How is asthma treated", "How to treat gout", "How is eczema treated",
                  "treatment for migraine", "How do you treat acne"],
    "cost": ["做胃镜多少钱", "核磁共振多少钱", "种牙多少钱", "拔智齿多少钱", "体检多少钱",
             "How much does an MRI cost", "How much do braces cost", "cost of a colonoscopy",
             "How much does surgery cost", "price of a dental implant"],
    "other": ["眉毛剪了会长吗", "多高算高个", "孩子几岁换牙", "打哈欠正常吗", "头发颜色为什么不同",
              "Why do I yawn", "Can eyebrows grow back", "Is cracking knuckles okay",
              "How tall will I grow", "Why do babies hiccup"],
    "greeting": ["你好", "您好医生", "谢谢你", "早上好", "再见",
                 "Hello", "Hi there", "Thank you", "Good morning", "Bye"],
    "administrative": ["怎么预约挂号", "医院几点开门", "周末门诊上班吗", "挂什么科", "怎么取消预约",
                       "How do I book an appointment", "What are your opening hours",
                       "Is the clinic open on Sunday", "Which department should I go to",
                       "How do I cancel my appointment"],
    "out_of_scope": ["帮我写一首诗", "今天天气怎么样", "推荐一部电影", "股票会涨吗", "讲个笑话",
                     "Write me a poem", "What is the weather today", "Recommend a movie",
                     "Should I buy stocks", "Tell me a joke"],
}
EMOTION_EXAMPLES = {
    "fear": ["我好害怕", "我很担心是癌症", "好怕手术", "我很害怕担心", "担心害怕得睡不着",
             "I am so scared", "I'm worried it is cancer", "scared of the surgery",
             "I am scared and worried", "so worried I can't sleep"],
    "anger": ["气死我了", "我要投诉", "太生气了", "服务太差气死了", "我很生气要投诉",
              "I am so angry", "I want to complain", "this makes me furious",
              "angry about the terrible service", "I'm angry and I will complain"],
    "joy": ["太好了谢谢", "好开心", "太高兴了", "开心极了", "结果正常太好了",
            "so happy thank you", "great news I'm happy", "I am glad", "wonderful, so happy",
            "happy the results are fine"],
    "neutral": ["高血压怎么治疗", "胃镜要空腹吗", "布洛芬怎么吃", "血常规正常值", "感冒吃什么药",
                "How is asthma treated", "Do I need to fast", "How to take ibuprofen",
                "normal blood count", "what to take for a cold"],
}


def tiny_sets() -> dict[str, list[Example]]:
    def examples(table):
        return [Example(t, label, "project", "zh" if ord(t[0]) > 127 else "en")
                for label, texts in table.items() for t in texts]

    return {"intent": examples(INTENT_EXAMPLES), "emotion": examples(EMOTION_EXAMPLES)}


def train_tiny(out: Path) -> dict:
    cfg = TrainConfig(out=out, cache=None, hash_dim=1024, held_share=0.2, c_grid=(10.0,),
                      dense_scales=(1.0,), tune_bias=())
    return train_classifier(cfg, embedder=HashEmbedder(32), sets=tiny_sets(), log=lambda m: None,
                            command="test")
