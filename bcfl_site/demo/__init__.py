"""The demo story that `make demo` plays (`manage.py play_demo`): a creator, participants, training, settlement,
marketplace sales and payouts, end to end against a running platform (`bcfl_site.demo.story.Story`)."""
