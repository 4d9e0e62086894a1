"""lapor.services"""
