"""shopjobs: the shop's domain beside the card's actors/, middleware/, broker.py and scheduler.py."""
