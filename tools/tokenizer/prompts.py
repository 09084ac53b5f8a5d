"""The prompt corpus for the CLIP tokenizer fixtures: hand-written cases, then generated ones.

Every string here goes into Tests/ChiselModelsTests/Fixtures/tokenizer/corpus.json with the ids
transformers produces for it. Characters are written as escapes where they are invisible or
easily confused. Only characters assigned in Unicode 14.0 are used: Python 3.11's unicodedata
(which transformers' slow tokenizer consults) knows no later ones and would delete them.
"""

HAND_WRITTEN = [
    # Empty and whitespace only.
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    " \t \n ",
    "\u00a0",
    "\u3000",
    # Typical Stable Diffusion prompts.
    "a photo of a cat",
    "A photograph of an astronaut riding a horse",
    "a painting of a fox sitting in a field at sunrise in the style of Claude Monet",
    "masterpiece, best quality, highly detailed, 8k, ultra realistic, cinematic lighting",
    "portrait of a woman, oil on canvas, by Rembrandt, chiaroscuro",
    "cyberpunk city at night, neon lights, rain, reflections, trending on artstation",
    "low quality, blurry, jpeg artifacts, watermark, signature, text, deformed hands",
    "isometric view of a tiny cozy room, 3d render, octane render, unreal engine 5",
    "an armchair in the shape of an avocado",
    "a corgi wearing a red bowtie and a purple party hat",
    "Studio Ghibli style landscape with floating islands",
    "close-up macro shot of a dew drop on a leaf, f/2.8, 100mm lens",
    "(masterpiece:1.2), (best quality:1.1), 1girl, solo, long hair",
    "((detailed eyes)), [[blurry background]], {fantasy}, <lora:style:0.8>",
    "a cat (wearing a hat:1.5) and [a dog:0.7]",
    "(((ultra detailed))) [[[bad anatomy]]]",
    "cat:1.2 dog:0.8 AND bird::2",
    "score_9, score_8_up, score_7_up, source_anime",
    "snake_case_prompt with_underscores __init__ _leading trailing_",
    "embedding:EasyNegative, by_artist_name",
    "a | b | c",
    "prompt with a very long tail " + "and more details " * 20,
    "word " * 100,
    "a, " * 80,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat.",
    # Mixed case.
    "HELLO WORLD",
    "hElLo WoRlD",
    "CamelCaseWordsTogether",
    "iPhone macOS GPT-4o DALL-E",
    "ALL CAPS PROMPT: A DRAGON!!!",
    # Contractions.
    "don't",
    "DON'T STOP",
    "it's what we've got, they're here, I'm sure you'll see, he'd go",
    "can't won't shouldn't",
    "'s 't 're 've 'm 'll 'd",
    "'S 'T 'RE 'VE 'M 'LL 'D",
    "rock'n'roll o'clock",
    "'''quoted''' ''s",
    "the cat's hat's brim",
    "it\u2019s a curly apostrophe",
    "James' book",
    # Numbers and decimals.
    "0",
    "123",
    "3.14159",
    "1,000,000 dollars",
    "-42 +17 1e10 0x1F",
    "4k 8k 16:9 1920x1080 2048px",
    "version 1.2.3-beta",
    "12.5% off, $9.99, \u20ac20, \u00a35",
    "\u00bd cup, \u00b2 squared, \u2163 roman, \u2460 circled",
    "\u0661\u0662\u0663 arabic-indic digits",
    "\u0967\u0968\u0969 devanagari digits",
    "\uff11\uff12\uff13 fullwidth digits",
    "year 1999 and 2024",
    # Punctuation runs.
    "!!!",
    "hello!!!",
    "what?!?!",
    "wait... what\u2026",
    "--- *** ___ ===",
    "!@#$%^&*()_+-=[]{}|;':\",./<>?`~",
    "\u00bf\u00a1spanish!?",
    "\u300c\u3053\u3093\u306b\u3061\u306f\u300d\u3001\u4e16\u754c\u3002",
    "a--b a---b a----b",
    "....,,,,;;;;::::",
    "\u2014em dash\u2013en dash\u2012figure dash",
    "\u00abguillemets\u00bb \u201cdouble\u201d \u2018single\u2019",
    "#hashtag @mention $cashtag",
    "<|startoftext|>",
    "<|endoftext|>",
    "<|startoftext|>a photo<|endoftext|>",
    "!<|endoftext|>b",
    "<|ENDOFTEXT|> upper case special",
    "<|endoftext|><|endoftext|>",
    "< |endoftext| >",
    "<|endof text|>",
    "<|endoftext",
    "foo<|startoftext|>bar",
    # URLs, paths and e-mail.
    "https://example.com/path?query=1&x=y#frag",
    "http://www.test.org/a_b-c.png",
    "see www.stable-diffusion.ai for more",
    "C:\\Users\\name\\file.txt and /usr/local/bin",
    "name.surname+tag@example.co.uk",
    # HTML entities and markup.
    "&amp;",
    "fish &amp; chips",
    "&lt;tag&gt; &quot;quoted&quot; &#39;apos&#39;",
    "&amp;amp; double escaped",
    "&nbsp;&copy;&reg;&trade;",
    "&#x1F600; &#128512;",
    "<b>bold</b> <i>italic</i> <br/>",
    "5 < 6 > 4 & 3",
    # Accents and other Latin.
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 fa\u00e7ade",
    "cafe\u0301 decomposed accent",
    "CAF\u00c9 UPPER",
    "\u00c5ngstr\u00f6m \u212bngstr\u00f6m",
    "stra\u00dfe STRASSE \u1e9e",
    "\u0130stanbul \u0131s\u0131k",
    "\u00e6sir \u00f8re \u00fe\u00f0",
    "\u0141\u00f3d\u017a \u017c\u00f3\u0142\u0107",
    "se\u00f1or ni\u00f1o",
    "\ufb01ne \ufb02ow ligatures",
    "\u01c4 \u01c5 \u01c6 digraphs",
    "Z\u0335\u0321a\u0336\u0327l\u0334g\u0337o\u0338 text",
    "x\u0345y iota subscript",
    "\u0f40\u0f73\u0f73 \u0f40\u0f81\u0f74\u0f72 \u0f73\u0f71 tibetan vowel signs",
    "u\u0344 \u03b9\u0344 \u00fc\u0301 dialytika tonos",
    "a\u0301\u0323 e\u0323\u0302 o\u031b\u0301 marks out of order",
    "\u03b1\u0345 composed",
    "it'\u017f long s",
    "\u212a kelvin sign",
    # Greek, Cyrillic and others.
    "\u039f\u0394\u039f\u03a3 \u03bf\u03b4\u03bf\u03c2",
    "\u03a3\u039f\u03a6\u0399\u0391",
    "\u0391\u03a3\u0391\u03a3",
    "\u03a3 alone",
    "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
    "\u0531\u0532\u0533 armenian",
    # CJK.
    "\u732b",
    "\u732b\u306e\u7d75",
    "\u4e00\u5339\u732b\u5750\u5728\u6c99\u53d1\u4e0a",
    "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c",
    "\u30ab\u30bf\u30ab\u30ca \uff76\uff80\uff76\uff85",
    "\uc548\ub155\ud558\uc138\uc694 \ud55c\uad6d\uc5b4",
    "\u1100\u1161\u1102\u1161 jamo",
    "anime girl \u5c11\u5973, \u685c, \u5bcc\u58eb\u5c71",
    "\U00020000\U0002a6d6 extension b",
    "\uf900\ufa0e compatibility ideographs",
    "\u3400\u4dbf extension a",
    "\u2f00\u2e80 radicals",
    "\uff21\uff22\uff23 fullwidth latin",
    "\u3042\u30a2\u4e9c mixed kana kanji",
    # Emoji.
    "\U0001F600",
    "\U0001F600\U0001F601\U0001F602",
    "a cat \U0001F431 and a dog \U0001F436",
    "\U0001F44D\U0001F3FD thumbs up medium skin",
    "\U0001F469\u200d\U0001F4BB",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family",
    "\U0001F3F3\ufe0f\u200d\U0001F308 rainbow flag",
    "\U0001F1EF\U0001F1F5 \U0001F1FA\U0001F1F8 flags",
    "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F",
    "\u2764\ufe0f \u2764 \u2763",
    "1\ufe0f\u20e3 keycap",
    "\U0001F9D1\U0001F3FF\u200d\U0001F680 astronaut",
    "\u2728sparkles\u2728",
    "\U0001F525\U0001F525\U0001F525 fire",
    # Invisible, control and odd whitespace.
    "a\u200db",
    "zero\u200bwidth\u200cspace",
    "soft\u00adhyphen",
    "bom\ufeffinside",
    "a\u00a0b\u2009c\u202fd",
    "tabs\tand\nnewlines\r\nand\u000bvertical\u000cformfeed",
    "  leading and trailing  ",
    "multiple     spaces      between",
    "line\u2028separator\u2029paragraph",
    "next\u0085line",
    "file\u001cgroup\u001drecord\u001eunit\u001fsep",
    "null\u0000char",
    "bell\u0007 escape\u001b[31m",
    "replacement \ufffd char",
    "private \ue000 use",
    "rtl \u200fmark\u200e ltr",
    "ideographic\u3000space",
    "ogham\u1680space",
    # Mixed.
    "Ol\u00e1! \u00c7a va? \u00a1Hola! \u4f60\u597d\uff01\U0001F30D",
    "The year's best 35mm film photo (f/1.4) \u2014 \u00a9 2023 & more...",
    "mathematical \u2200x\u2208\u211d: x\u00b2 \u2265 0 \u221e \u2211 \u03c0",
    "arrows \u2190 \u2191 \u2192 \u2193 \u21d2 and box \u2500\u2502\u250c",
    "\U0001D400\U0001D401\U0001D402 bold math letters",
    "music \u266a\u266b \U0001D11E",
    "superscript x\u00b9\u00b2\u00b3 subscript H\u2082O",
    "degree 25\u00b0C and 77\u2109",
]


def generated():
    """Systematic combinations, so that the corpus also covers what nobody thought to write."""
    out = []
    subjects = ["a cat", "an old man", "a red car", "the Eiffel Tower", "a bowl of ramen"]
    styles = ["oil painting", "pixel art", "watercolor", "35mm photo", "3D render"]
    weights = ["1.2", "0.8", "1.05", ".5", "2"]
    for i, subject in enumerate(subjects):
        style = styles[i]
        weight = weights[i]
        out.append(f"({subject}:{weight}), {style}")
        out.append(f"[{subject}], ({style})")
        out.append(f"{subject.upper()} IN {style.upper()}")
        out.append(f"{subject}\t{style}\n")
        out.append(f"{subject}, {style}, " * 12)
    for n in ["7", "42", "3.5", "0.001", "1,234.56", "10e-3", "\u0663\u0664", "\u2155"]:
        out.append(f"{n} apples")
        out.append(f"x{n}y")
    for word in ["caf\u00e9", "\u00fcber", "\u00e0 la", "ni\u00f1o", "\u00c9COLE"]:
        out.append(f"{word} {word.upper()} {word.lower()}")
    for emoji in ["\U0001F44B", "\U0001F44B\U0001F3FB", "\U0001F44B\U0001F3FF", "\U0001F9D9\u200d\u2642\ufe0f"]:
        out.append(f"wave{emoji}hello")
        out.append(f"{emoji} {emoji}{emoji}")
    for punct in ["!", "?", ".", ",", ";", ":", "'", '"', "-", "_", "/", "\\", "(", ")", "[", "]", "{", "}", "<", ">"]:
        out.append(f"word{punct}word {punct * 3}")
    for contraction in ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]:
        out.append(f"x{contraction}x {contraction.upper()}a")
    for space in ["\u00a0", "\u2002", "\u2003", "\u2007", "\u200a", "\u205f", "\u180e", "\u2060", "\u00ad"]:
        out.append(f"left{space}right")
    # Exactly at and around the 75-token limit, one token per word ("a").
    for count in [74, 75, 76, 77]:
        out.append(" ".join(["a"] * count))
    return out


def corpus():
    prompts = HAND_WRITTEN + generated()
    seen = set()
    unique = []
    for prompt in prompts:
        if prompt not in seen:
            seen.add(prompt)
            unique.append(prompt)
    return unique
