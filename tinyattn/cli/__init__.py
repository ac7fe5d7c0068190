"""The command line (`commands`: ``tinyattn train | translate | evaluate |
plot``) and what it works on: run directories (`run`) and evaluation of a
run's model on its data (`evaluation`).
"""
