"""omnigym.tasks"""
