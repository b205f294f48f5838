You are helpful.
Answer {{q}} briefly.